"""When booking closes the school hears, once, which pupils still have no time, also with two instances running.

Each instance also runs its own closing loop (notify_responses.talks_closing); the tests call the same method at
once from both instances, and count what reaches the topic, whoever closed the round.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from notify_responses.settings import ResponsesSettings
from notify_responses.talks_testing import book, booking_link_for
from notify_responses.testing import RunningResponses, isolated_settings, running_responses
from notify_shared import samples
from notify_shared.samples import SAMPLE_NOW
from notify_shared.testing.clocks import SettableClock
from notify_shared.testing.kafka import TopicReader
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka


async def _announced(settings: ResponsesSettings, responses: RunningResponses) -> list[dict[str, Any]]:
    async def outbox_empty() -> bool:
        return await responses.runtime.store.waiting() == 0

    await wait_until(outbox_empty, within=30, what="the outbox emptied")
    async with TopicReader(settings.kafka_bootstrap_servers, settings.topics.talks_round_closed) as reader:
        return await reader.read_to_end()


async def test_the_closed_round_is_announced_once_with_the_pupils_still_without_a_talk(
    kafka_bootstrap: str, tmp_path: Path, database_url: str
) -> None:
    settings = isolated_settings(kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path, database_url=database_url)
    event = samples.talks_offered(opens_at=SAMPLE_NOW - timedelta(days=1), time=SAMPLE_NOW - timedelta(days=2))
    clock = SettableClock(SAMPLE_NOW)
    async with running_responses(settings, clock=clock) as first, running_responses(settings, clock=clock) as second:
        await first.runtime.talks.apply_offer(event)
        await book(first, booking_link_for(settings, event, pupil=0), event.data.slots[0].slot_id)
        await first.runtime.talks.close_due_rounds()
        while_open = await _announced(settings, first)

        clock.now = event.data.booking_closes_at
        await asyncio.gather(first.runtime.talks.close_due_rounds(), second.runtime.talks.close_due_rounds())
        await first.runtime.talks.close_due_rounds()
        records = await _announced(settings, first)

    assert while_open == []
    assert len({record["id"] for record in records}) == 1
    data = records[0]["data"]
    assert data["round_id"] == "r-2026h-7b"
    assert data["booked"] == 1
    assert data["pupils_without_booking"] == ["p-77121"]


async def test_an_offer_that_moves_the_closing_later_reopens_the_round_until_then(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path)
    event = samples.talks_offered(opens_at=SAMPLE_NOW - timedelta(days=8), time=SAMPLE_NOW - timedelta(days=9))
    clock = SettableClock(SAMPLE_NOW)
    async with running_responses(settings, clock=clock) as responses:
        await responses.runtime.talks.apply_offer(event)
        await responses.runtime.talks.close_due_rounds()
        assert len(await _announced(settings, responses)) == 1
        extended = samples.talks_offered(
            event_id="extended", opens_at=SAMPLE_NOW - timedelta(days=2), time=SAMPLE_NOW - timedelta(minutes=5)
        )
        await responses.runtime.talks.apply_offer(extended)

        reopened = await responses.client.get(f"/b/{booking_link_for(settings, extended)}")
        await responses.runtime.talks.close_due_rounds()
        assert len(await _announced(settings, responses)) == 1
        clock.now = extended.data.booking_closes_at
        await responses.runtime.talks.close_due_rounds()
        announced = await _announced(settings, responses)

    assert reopened.status_code == 200
    assert len(announced) == 2
