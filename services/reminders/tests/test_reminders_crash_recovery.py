"""A replica that dies with reminders claimed: another takes them over once its heartbeat is stale, not after the
whole claim lease, and never while the holder still beats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from notify_reminders.store import ReminderStore, reminders
from notify_shared.ledger import create_engine
from notify_shared.ledger.database import create_schema
from notify_shared.ledger.liveness import SenderLiveness
from notify_shared.testing.clocks import SettableClock

NOW = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await create_schema(engine)  # the ledger's tables, where heartbeats are kept
    await ReminderStore(engine).create_schema()
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(reminders).values(
                reminder_id="r-1",
                meeting_id="m-1",
                school_id="nor-0301-4012",
                guardian_id="g-1",
                channel="sms",
                rule_id="sms-2h",
                starts_at=NOW + timedelta(hours=2),
                due_at=NOW,
                state="pending",
                payload="{}",
                updated_at=NOW,
            )
        )
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_reminders_of_a_crashed_replica_pass_on_once_its_heartbeat_is_stale(engine: AsyncEngine) -> None:
    clock = SettableClock(NOW)
    crashed = SenderLiveness(engine, timeout=timedelta(seconds=20), clock=clock)
    survivor = SenderLiveness(engine, timeout=timedelta(seconds=20), clock=clock)
    await crashed.start()
    await survivor.start()
    try:
        first = await ReminderStore(engine, liveness=crashed).claim_due(
            now=clock(), owner=crashed.sender_id, lease=LEASE, limit=10
        )
        assert crashed._beating is not None
        crashed._beating.cancel()  # kill -9: the heartbeat stops, the row stays
        store = ReminderStore(engine, liveness=survivor)

        clock.now += timedelta(seconds=15)
        await survivor._beat()
        while_it_may_live = await store.claim_due(now=clock(), owner=survivor.sender_id, lease=LEASE, limit=10)
        clock.now += timedelta(seconds=10)
        await survivor._beat()
        taken_over = await store.claim_due(now=clock(), owner=survivor.sender_id, lease=LEASE, limit=10)
    finally:
        await survivor.stop()
        await crashed.stop()

    assert [row.reminder_id for row in first] == ["r-1"]
    assert while_it_may_live == []
    assert [row.reminder_id for row in taken_over] == ["r-1"]
