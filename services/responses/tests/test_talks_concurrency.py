"""The last slot, wanted by fifty families at the same moment: exactly one gets it, on SQLite and on PostgreSQL,
with two instances of the service on one database."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from notify_responses.talks_store import bookings
from notify_responses.talks_testing import booking_link_for, open_booking, slots_offered_in
from notify_responses.testing import RunningResponses, isolated_settings, proof_in, running_responses
from notify_shared import samples
from notify_shared.contract import TalkPupil
from notify_shared.samples import SAMPLE_NOW
from notify_shared.testing.clocks import SettableClock
from notify_shared.testing.kafka import TopicReader
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka

FAMILIES = 50


async def test_fifty_families_booking_one_slot_at_once_on_two_instances_get_one_booking_and_49_just_taken(
    kafka_bootstrap: str, tmp_path: Path, database_url: str
) -> None:
    settings = isolated_settings(
        kafka_bootstrap=kafka_bootstrap,
        work_dir=tmp_path,
        database_url=database_url,
        requests_per_client_per_minute=100_000,
    )
    pupils = [
        TalkPupil(pupil_id=f"p-{number}", first_name="Emma", guardians=(samples.sample_guardian(number),))
        for number in range(1, FAMILIES + 1)
    ]
    event = samples.talks_offered(pupils=pupils, opens_at=SAMPLE_NOW - timedelta(days=1), time=SAMPLE_NOW)
    wanted = event.data.slots[0].slot_id
    clock = SettableClock(SAMPLE_NOW)
    async with running_responses(settings, clock=clock) as first, running_responses(settings, clock=clock) as second:
        await first.runtime.talks.apply_offer(event)
        instances = [first, second]
        tokens = [booking_link_for(settings, event, pupil=number) for number in range(FAMILIES)]
        # Every family has the page open, each on one of the two instances, before anyone books.
        pages = await asyncio.gather(
            *(open_booking(instances[number % 2], token) for number, token in enumerate(tokens))
        )

        async def take_the_slot(number: int) -> httpx.Response:
            form = {"proof": proof_in(pages[number].text), "action": "book", "slot": wanted}
            return await instances[number % 2].client.post(f"/b/{tokens[number]}", data=form)

        answers = await asyncio.gather(*(take_the_slot(number) for number in range(FAMILIES)))

        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200] + [409] * (FAMILIES - 1)
        for answer in answers:
            if answer.status_code == 409:
                assert "Noen andre bestilte den tiden akkurat nå" in answer.text
                assert slots_offered_in(answer.text) == [slot.slot_id for slot in event.data.slots[1:]]
        (winner,) = [answer for answer in answers if answer.status_code == 200]
        assert "Samtalen er bestilt" in winner.text
        async with first.runtime.store.engine.connect() as connection:
            holders = (await connection.execute(sa.select(bookings.c.pupil_id))).scalars().all()
        assert len(holders) == 1
        booked = await _talk_booked_on_the_topic(settings.kafka_bootstrap_servers, settings.topics.talk_booked, first)
        # Both instances' relays may publish the one outbox row (at-least-once, one event id: docs/talks.md).
        assert {(record["id"], record["data"]["pupil_id"]) for record in booked} == {(booked[0]["id"], holders[0])}


async def _talk_booked_on_the_topic(bootstrap: str, topic: str, responses: RunningResponses) -> list[dict[str, Any]]:
    async def outbox_empty() -> bool:
        return await responses.runtime.store.waiting() == 0

    await wait_until(outbox_empty, within=30, what="the outbox emptied")
    async with TopicReader(bootstrap, topic) as reader:
        return await reader.read_to_end()
