"""Retention in the ingest: a receipt of an accepted event (ids and a digest, no personal data) is kept for the
records window, so a late retry is still answered as a duplicate; one still being published is never touched."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from notify_ingest.retention import rules
from notify_ingest.store import AcceptedEvents, ingested_events
from notify_shared.retention.job import Retention
from notify_shared.retention.windows import RetentionWindows
from notify_shared.testing.clocks import SettableClock

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[AcceptedEvents]:
    store = await AcceptedEvents.connect(database_url, lease_seconds=30)
    try:
        yield store
    finally:
        await store.aclose()


async def receipt(store: AcceptedEvents, event_id: str, received: datetime, *, published: bool) -> None:
    async with store.engine.begin() as connection:
        await connection.execute(
            sa.insert(ingested_events).values(
                school_id="nor-0301-4012",
                source="urn:notify:demo",
                event_id=event_id,
                event_type="meeting.created",
                digest="0" * 64,
                state="published" if published else "pending",
                attempts=1,
                received_at=received,
                published_at=received if published else None,
                topic="meeting.created",
            )
        )


async def test_receipts_go_after_the_records_window_and_pending_ones_stay(store: AcceptedEvents) -> None:
    await receipt(store, "e-old", NOW - timedelta(days=401), published=True)
    await receipt(store, "e-recent", NOW - timedelta(days=399), published=True)
    await receipt(store, "e-stuck", NOW - timedelta(days=500), published=False)
    retention = Retention(
        store.engine, rules(), RetentionWindows(records=timedelta(days=400)), clock=SettableClock(NOW)
    )

    (count,) = await retention.purge()

    assert (count.rule, count.rows) == ("ingest.accepted_events", 1)
    async with store.engine.connect() as connection:
        left = sorted((await connection.execute(sa.select(ingested_events.c.event_id))).scalars())
    assert left == ["e-recent", "e-stuck"]
