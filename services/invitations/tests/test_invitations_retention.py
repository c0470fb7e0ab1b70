"""Retention in the invitations service: what it knew of a meeting (agenda included) goes a month after the
meeting ended; a meeting still to come, or just over, keeps its state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from notify_invitations.meeting_states import MeetingStateStore, meeting_decisions, meeting_states
from notify_invitations.retention import rules
from notify_shared import samples
from notify_shared.ledger import create_engine
from notify_shared.retention.job import Retention
from notify_shared.retention.windows import RetentionWindows
from notify_shared.testing.clocks import SettableClock

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await MeetingStateStore(engine).create_schema()
    try:
        yield engine
    finally:
        await engine.dispose()


async def announce(store: MeetingStateStore, meeting_id: str, starts_at: datetime) -> None:
    meeting = samples.sample_meeting(meeting_id=meeting_id, starts_at=starts_at, ends_at=starts_at + timedelta(hours=1))
    await store.decide(samples.meeting_created(meeting=meeting, time=starts_at - timedelta(days=14)))
    moved = meeting.model_copy(update={"location": "Gymsalen"})
    await store.decide(samples.meeting_updated(meeting=moved, time=starts_at - timedelta(days=7)))


async def meetings_in(engine: AsyncEngine, table: sa.Table) -> list[str]:
    async with engine.connect() as connection:
        return sorted(set((await connection.execute(sa.select(table.c.meeting_id))).scalars()))


async def test_a_meetings_state_and_decisions_go_a_month_after_it_ended_and_no_sooner(engine: AsyncEngine) -> None:
    store = MeetingStateStore(engine)
    await announce(store, "m-ended-long-ago", NOW - timedelta(days=32))
    await announce(store, "m-ended-last-week", NOW - timedelta(days=7))
    await announce(store, "m-coming", NOW + timedelta(days=7))
    retention = Retention(engine, rules(), RetentionWindows(personal_data=timedelta(days=30)), clock=SettableClock(NOW))

    counts = {count.rule: count.rows for count in await retention.purge()}

    assert counts == {"invitations.meeting_states": 1, "invitations.decisions": 2}
    assert await meetings_in(engine, meeting_states) == ["m-coming", "m-ended-last-week"]
    assert await meetings_in(engine, meeting_decisions) == ["m-coming", "m-ended-last-week"]
