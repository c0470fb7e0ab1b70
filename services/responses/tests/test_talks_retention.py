"""A month after a round's last talk the service has forgotten the round: slots, pupils, links and bookings."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from notify_responses.retention import rules
from notify_responses.settings import ResponsesSettings
from notify_responses.talks_store import bookings, guardians, pupils, rounds, slots
from notify_responses.talks_testing import book, booking_link_for, open_booking
from notify_responses.testing import RunningResponses
from notify_shared import samples
from notify_shared.retention.job import Retention
from notify_shared.samples import SAMPLE_NOW
from notify_shared.testing.clocks import SettableClock

pytestmark = pytest.mark.kafka

TALK_TABLES = (rounds, slots, pupils, guardians, bookings)


async def _rows(responses: RunningResponses, table: sa.Table) -> int:
    async with responses.runtime.store.engine.connect() as connection:
        return int(await connection.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def test_a_round_is_forgotten_after_the_retention_time_from_its_last_talk_and_not_before(
    settings: ResponsesSettings, responses: RunningResponses, clock: SettableClock
) -> None:
    event = samples.talks_offered(opens_at=SAMPLE_NOW - timedelta(days=1), time=SAMPLE_NOW - timedelta(days=2))
    await responses.runtime.talks.apply_offer(event)
    token = booking_link_for(settings, event)
    assert (await book(responses, token, event.data.slots[0].slot_id)).status_code == 200
    retention = Retention(responses.runtime.store.engine, rules(), settings.retention_windows, clock=clock)
    last_talk_ends = max(slot.ends_at for slot in event.data.slots)

    clock.now = last_talk_ends + settings.retention_personal_data - timedelta(minutes=1)
    await retention.purge()
    assert [await _rows(responses, table) for table in TALK_TABLES] == [1, 8, 2, 4, 1]

    clock.now = last_talk_ends + settings.retention_personal_data + timedelta(minutes=1)
    counts = {count.rule: count.rows for count in await retention.purge()}

    assert counts["talks.rounds"] == 1
    assert [await _rows(responses, table) for table in TALK_TABLES] == [0, 0, 0, 0, 0]
    assert (await open_booking(responses, token)).status_code in {404, 410}


async def test_erasing_a_guardian_deletes_their_booking_links_and_keeps_the_pupils_booking(
    settings: ResponsesSettings, responses: RunningResponses, clock: SettableClock
) -> None:
    event = samples.talks_offered(opens_at=SAMPLE_NOW - timedelta(days=1), time=SAMPLE_NOW - timedelta(days=2))
    await responses.runtime.talks.apply_offer(event)
    mother = booking_link_for(settings, event, guardian=0)
    await book(responses, mother, event.data.slots[0].slot_id)
    retention = Retention(responses.runtime.store.engine, rules(), settings.retention_windows, clock=clock)

    await retention.erase("nor-0301-bjolsen", "g-1001")

    assert (await open_booking(responses, mother)).status_code == 404
    father_sees = await open_booking(responses, booking_link_for(settings, event, guardian=1))
    assert "Samtalen din:" in father_sees.text
