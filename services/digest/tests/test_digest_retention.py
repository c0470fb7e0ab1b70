"""Retention in the digest service: message texts and absence notices go a month after the digest or notice that
carried them was final; what still waits is never touched; erasing a guardian removes everything of theirs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from notify_digest.retention import rules
from notify_digest.store import DigestStore, State, digests, items, notices
from notify_shared.ledger import create_engine
from notify_shared.retention.job import Retention
from notify_shared.retention.windows import RetentionWindows
from notify_shared.testing.clocks import SettableClock

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SCHOOL, OTHER_SCHOOL = "nor-0301-4012", "nor-4601-2210"
WINDOWS = RetentionWindows(personal_data=timedelta(days=30), records=timedelta(days=400))
PERSONAL = '{"name": "Kari Nordmann", "email": "kari@example.no"}'


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await DigestStore(engine).create_schema()
    try:
        yield engine
    finally:
        await engine.dispose()


async def digest(
    engine: AsyncEngine,
    digest_id: str | None,
    state: State,
    settled: datetime,
    *,
    guardian_id: str = "g-1",
    school_id: str = SCHOOL,
    items_in_it: int = 2,
) -> None:
    async with engine.begin() as connection:
        if digest_id is not None:
            await connection.execute(
                sa.insert(digests).values(
                    digest_id=digest_id,
                    school_id=school_id,
                    guardian_id=guardian_id,
                    period="weekly",
                    slot_at=settled,
                    state=state.value,
                    not_before=settled,
                    updated_at=settled,
                )
            )
        for number in range(items_in_it):
            await connection.execute(
                sa.insert(items).values(
                    item_id=f"{school_id}/{digest_id}/{guardian_id}/{number}",
                    school_id=school_id,
                    timezone="Europe/Oslo",
                    guardian_id=guardian_id,
                    period="weekly",
                    kind="message",
                    section="7B",
                    sort_at=settled,
                    payload='{"body": "Husk matpakke"}',
                    school="{}",
                    guardian=PERSONAL,
                    created_at=settled - timedelta(days=3),
                    digest_id=digest_id,
                )
            )


async def notice(
    engine: AsyncEngine,
    notice_id: str,
    state: State,
    settled: datetime,
    *,
    guardian_id: str = "g-1",
    school_id: str = SCHOOL,
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(notices).values(
                notice_id=notice_id,
                kind="absence",
                school_id=school_id,
                guardian_id=guardian_id,
                group_key="p-1/2026-12-01",
                due_at=settled,
                state=state.value,
                payload='{"pupil": "Ola"}',
                school="{}",
                guardian=PERSONAL,
                updated_at=settled,
            )
        )


async def ids(engine: AsyncEngine, column: sa.ColumnElement[str | None]) -> list[str | None]:
    async with engine.connect() as connection:
        return sorted({value for value in (await connection.execute(sa.select(column))).scalars()}, key=str)


def retention(engine: AsyncEngine) -> Retention:
    return Retention(engine, rules(), WINDOWS, clock=SettableClock(NOW))


async def test_texts_of_a_digest_sent_over_a_month_ago_go_and_its_receipt_stays_for_the_records_window(
    engine: AsyncEngine,
) -> None:
    await digest(engine, "d-old", State.SENT, NOW - timedelta(days=31))
    await digest(engine, "d-recent", State.SENT, NOW - timedelta(days=29))
    await digest(engine, "d-claimed", State.CLAIMED, NOW - timedelta(days=90))
    await digest(engine, None, State.PENDING, NOW - timedelta(days=60))  # items still waiting for their slot
    await digest(engine, "d-ancient", State.FAILED, NOW - timedelta(days=401), items_in_it=0)

    counts = {count.rule: count.rows for count in await retention(engine).purge()}

    assert counts == {"digest.items": 2, "digest.notices": 0, "digest.digests": 1}
    assert await ids(engine, items.c.digest_id) == [None, "d-claimed", "d-recent"]
    assert await ids(engine, digests.c.digest_id) == ["d-claimed", "d-old", "d-recent"]


async def test_an_absence_notice_goes_a_month_after_it_was_sent_and_a_pending_one_never(engine: AsyncEngine) -> None:
    await notice(engine, "n-sent-long-ago", State.SENT, NOW - timedelta(days=31))
    await notice(engine, "n-skipped-recently", State.SKIPPED, NOW - timedelta(days=2))
    await notice(engine, "n-pending", State.PENDING, NOW - timedelta(days=45))

    counts = {count.rule: count.rows for count in await retention(engine).purge()}

    assert counts["digest.notices"] == 1
    assert await ids(engine, notices.c.notice_id) == ["n-pending", "n-skipped-recently"]


async def test_erasing_a_guardian_removes_their_waiting_items_notices_and_digests_in_that_school_only(
    engine: AsyncEngine,
) -> None:
    await digest(engine, None, State.PENDING, NOW, guardian_id="g-1")
    await digest(engine, "d-1", State.SENT, NOW - timedelta(days=3), guardian_id="g-1")
    await notice(engine, "n-1", State.PENDING, NOW, guardian_id="g-1")
    await digest(engine, None, State.PENDING, NOW, guardian_id="g-1", school_id=OTHER_SCHOOL)
    await notice(engine, "n-2", State.PENDING, NOW, guardian_id="g-2")

    counts = {count.rule: count.rows for count in await retention(engine).erase(SCHOOL, "g-1")}

    assert counts == {"digest.items": 4, "digest.notices": 1, "digest.digests": 1}
    assert await ids(engine, items.c.school_id) == [OTHER_SCHOOL]
    assert await ids(engine, notices.c.notice_id) == ["n-2"]
