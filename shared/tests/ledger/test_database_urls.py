"""Database URLs as operators write them: libpq's and Heroku's forms work, anything else stops start-up in one line."""

from __future__ import annotations

import pytest

from notify_shared.ledger import DeliveryLedger
from notify_shared.settings import ServiceSettings, load_settings


@pytest.mark.parametrize(
    ("written", "used"),
    [
        ("postgresql://notify:pw@db.example:5432/notify", "postgresql+asyncpg://notify:pw@db.example:5432/notify"),
        ("postgres://notify:pw@db.example/notify", "postgresql+asyncpg://notify:pw@db.example/notify"),
        ("postgresql+asyncpg://notify@db.example/notify", "postgresql+asyncpg://notify@db.example/notify"),
        ("sqlite:///./.local/notify.db", "sqlite+aiosqlite:///./.local/notify.db"),
    ],
)
def test_a_postgres_or_sqlite_url_without_a_driver_runs_on_the_async_driver(
    monkeypatch: pytest.MonkeyPatch, written: str, used: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", written)

    assert load_settings(ServiceSettings).database_url == used


@pytest.mark.parametrize(
    "written",
    [
        "mysql://notify:hunter2-secret@db.example/notify",
        "postgresql+psycopg2://notify:hunter2-secret@db.example/notify",
        "db.example:5432/notify",
    ],
)
def test_any_other_database_url_stops_start_up_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], written: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", written)

    with pytest.raises(SystemExit) as stopped:
        load_settings(ServiceSettings)

    assert stopped.value.code == 2
    message = capsys.readouterr().err
    [problem] = [line for line in message.splitlines() if line.startswith("  ")]
    assert problem.startswith("  DATABASE_URL: ")
    assert "postgresql://" in problem
    assert "Traceback" not in message
    assert "hunter2-secret" not in message


@pytest.mark.postgres
async def test_a_ledger_opens_a_plain_postgresql_url(postgres_url: str) -> None:
    plain_url = postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async with await DeliveryLedger.connect(plain_url) as ledger:
        assert ledger.engine.url.drivername == "postgresql+asyncpg"
        assert await ledger.history("no-such-event") == []
