"""Retention in the reminders service: a meeting's schedule goes a month after it started, nothing still to come
is touched, and erasing a guardian stops their reminders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from notify_reminders.retention import rules
from notify_reminders.store import ReminderStore, reminder_invitations, reminder_meetings, reminders
from notify_shared.ledger import create_engine
from notify_shared.retention.job import Retention
from notify_shared.retention.windows import RetentionWindows
from notify_shared.testing.clocks import SettableClock

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SCHOOL, OTHER_SCHOOL = "nor-0301-4012", "nor-4601-2210"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await ReminderStore(engine).create_schema()
    try:
        yield engine
    finally:
        await engine.dispose()


async def schedule(
    engine: AsyncEngine, meeting_id: str, starts_at: datetime, guardians: list[str], *, school_id: str = SCHOOL
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(reminder_meetings).values(
                school_id=school_id,
                meeting_id=meeting_id,
                first_starts_at=starts_at,
                first_location="Aula",
                last_event_time=starts_at - timedelta(days=20),
                cancelled=False,
            )
        )
        for guardian_id in guardians:
            await connection.execute(
                sa.insert(reminder_invitations).values(
                    school_id=school_id,
                    meeting_id=meeting_id,
                    guardian_id=guardian_id,
                    invited_at=starts_at - timedelta(days=20),
                )
            )
            await connection.execute(
                sa.insert(reminders).values(
                    reminder_id=f"{school_id}/{meeting_id}/{guardian_id}",
                    meeting_id=meeting_id,
                    school_id=school_id,
                    guardian_id=guardian_id,
                    channel="sms",
                    rule_id="sms-2h",
                    starts_at=starts_at,
                    due_at=starts_at - timedelta(hours=2),
                    state="sent" if starts_at < NOW else "pending",
                    payload='{"guardian": {"name": "Kari Nordmann", "phone": "+4790000001"}}',
                    updated_at=starts_at - timedelta(hours=2),
                )
            )


async def rows(engine: AsyncEngine, table: sa.Table) -> list[tuple[str, ...]]:
    async with engine.connect() as connection:
        key = [table.c.school_id, table.c.meeting_id] + ([table.c.guardian_id] if "guardian_id" in table.c else [])
        return sorted(tuple(row) for row in await connection.execute(sa.select(*key)))


def retention(engine: AsyncEngine) -> Retention:
    return Retention(engine, rules(), RetentionWindows(personal_data=timedelta(days=30)), clock=SettableClock(NOW))


async def test_a_meetings_reminders_and_what_it_knew_go_a_month_after_it_started(engine: AsyncEngine) -> None:
    await schedule(engine, "m-old", NOW - timedelta(days=31), ["g-1", "g-2"])
    await schedule(engine, "m-recent", NOW - timedelta(days=29), ["g-1"])
    await schedule(engine, "m-coming", NOW + timedelta(days=3), ["g-1"])

    counts = {count.rule: count.rows for count in await retention(engine).purge()}

    assert counts == {"reminders.after_meeting": 2, "reminders.meetings": 1, "reminders.invitations": 2}
    for table in (reminders, reminder_meetings):
        assert [meeting for _, meeting, *_ in await rows(engine, table)] == ["m-coming", "m-recent"]
    assert [row[1] for row in await rows(engine, reminder_invitations)] == ["m-coming", "m-recent"]


async def test_a_pending_reminder_of_a_meeting_still_to_come_is_never_purged(engine: AsyncEngine) -> None:
    await schedule(engine, "m-next-year", NOW + timedelta(days=365), ["g-1"])

    assert all(count.rows == 0 for count in await retention(engine).purge())
    assert await rows(engine, reminders) == [(SCHOOL, "m-next-year", "g-1")]


async def test_erasing_a_guardian_stops_their_reminders_in_that_school_and_no_one_elses(engine: AsyncEngine) -> None:
    await schedule(engine, "m-1", NOW + timedelta(days=3), ["g-1", "g-2"])
    await schedule(engine, "m-1", NOW + timedelta(days=3), ["g-1"], school_id=OTHER_SCHOOL)

    counts = {count.rule: count.rows for count in await retention(engine).erase(SCHOOL, "g-1")}

    assert counts == {"reminders.after_meeting": 1, "reminders.invitations": 1}
    assert await rows(engine, reminders) == [(SCHOOL, "m-1", "g-2"), (OTHER_SCHOOL, "m-1", "g-1")]
    assert await rows(engine, reminder_invitations) == [(SCHOOL, "m-1", "g-2"), (OTHER_SCHOOL, "m-1", "g-1")]
