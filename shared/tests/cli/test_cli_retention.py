"""`notify purge` and `notify erase`: what an operator runs against one service's database, row counts only."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from notify_shared.cli import app
from notify_shared.ledger import DeliveryKey, DeliveryLedger, DeliveryStatus
from notify_shared.testing.clocks import SettableClock

SCHOOL = "nor-0301-4012"


async def deliveries(database_url: str, *, days_ago: int, guardians: list[str]) -> list[str]:
    clock = SettableClock(datetime.now(UTC) - timedelta(days=days_ago))
    ids = []
    async with await DeliveryLedger.connect(database_url, clock=clock) as ledger:
        for guardian_id in guardians:
            key = DeliveryKey(SCHOOL, "/visma-flyt/0301", "evt-1", guardian_id, "sms", "absence_notice")
            claim = await ledger.begin(key, source_event_type="absence.noted", school_id=SCHOOL, language="nb")
            await ledger.record(claim.notification_id, DeliveryStatus.SENT, provider="webhook")
            ids.append(claim.notification_id)
    return ids


async def still_there(database_url: str, ids: list[str]) -> list[bool]:
    async with await DeliveryLedger.connect(database_url) as ledger:
        return [await ledger.get(notification_id) is not None for notification_id in ids]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'invitations.db'}"


def test_purge_dry_run_shows_what_would_go_and_keeps_it(database_url: str) -> None:
    old = asyncio.run(deliveries(database_url, days_ago=500, guardians=["g-1", "g-2"]))
    recent = asyncio.run(deliveries(database_url, days_ago=10, guardians=["g-3"]))

    result = CliRunner().invoke(app, ["purge", "--database-url", database_url, "--dry-run", "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"rule": "ledger.deliveries", "table": "deliveries", "rows": 2}]
    assert asyncio.run(still_there(database_url, old + recent)) == [True, True, True]


def test_purge_deletes_what_the_windows_let_go_as_the_environment_sets_them(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETENTION_RECORDS", "PT240H")  # ten days instead of 400
    older = asyncio.run(deliveries(database_url, days_ago=11, guardians=["g-1"]))
    newer = asyncio.run(deliveries(database_url, days_ago=9, guardians=["g-2"]))

    result = CliRunner().invoke(app, ["purge", "--database-url", database_url])

    assert result.exit_code == 0, result.output
    assert "ledger.deliveries" in result.output
    assert asyncio.run(still_there(database_url, older + newer)) == [False, True]


def test_erase_removes_one_guardian_and_prints_counts_not_data(database_url: str) -> None:
    theirs, others = asyncio.run(deliveries(database_url, days_ago=1, guardians=["g-1", "g-2"]))

    result = CliRunner().invoke(
        app, ["erase", "--database-url", database_url, "--school-id", SCHOOL, "--guardian-id", "g-1", "--json"]
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"rule": "ledger.deliveries", "table": "deliveries", "rows": 1}]
    assert asyncio.run(still_there(database_url, [theirs, others])) == [False, True]
