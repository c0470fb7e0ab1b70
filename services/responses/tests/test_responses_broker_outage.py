"""Parents answer while Kafka is away: every answer is kept, and published once when Kafka is back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from notify_responses.store import outbox
from notify_responses.testing import isolated_settings, link_for, running_responses
from notify_shared import samples
from notify_shared.testing.clocks import SettableClock
from notify_shared.testing.faults import OwnKafkaBroker
from notify_shared.testing.kafka import EventPublisher, TopicReader
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka


async def test_answers_given_while_the_broker_is_down_are_published_once_when_it_returns(
    own_broker: OwnKafkaBroker, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap=own_broker.bootstrap, work_dir=tmp_path)
    guardians = [samples.sample_guardian(number) for number in (1, 2, 3)]
    event = samples.meeting_created(recipients=guardians)
    async with running_responses(settings, clock=SettableClock(samples.SAMPLE_NOW)) as responses:
        async with EventPublisher(settings.kafka_bootstrap_servers, settings.topics) as publisher:
            await publisher.publish(event)
        tokens = [link_for(settings, event, number) for number in range(3)]

        async def every_link_open() -> bool:
            statuses = [(await responses.open(token)).status_code for token in tokens]
            return statuses == [200, 200, 200]

        await wait_until(every_link_open, within=30, what="the meeting known to the service")

        await asyncio.to_thread(own_broker.command, "stop")
        given = [("accepted", tokens[0]), ("declined", tokens[1]), ("tentative", tokens[2]), ("accepted", tokens[2])]
        for answer, token in given:
            assert (await responses.answer(token, answer=answer)).status_code == 200
        assert await responses.runtime.store.waiting() == 4

        # An outage longer than one publish may take: the relay gives up on the first answer's event more than
        # once while the producer still holds it, which must not put it on the topic more than once.
        async def first_event_tried_twice() -> bool:
            return await _most_attempts(responses.runtime.store.engine) >= 2

        await wait_until(first_event_tried_twice, within=90, interval=0.5, what="two publish attempts in the outage")
        await asyncio.to_thread(own_broker.command, "start")

        async def outbox_empty() -> bool:
            return await responses.runtime.store.waiting() == 0

        await wait_until(outbox_empty, within=120, interval=0.5, what="the outbox published after the outage")

    async with TopicReader(settings.kafka_bootstrap_servers, settings.topics.meeting_rsvp) as reader:
        records = await reader.read_to_end()
    published = [(record["data"]["guardian_id"], record["data"]["answer"]) for record in records]
    assert sorted(published) == sorted(
        [("g-1001", "accepted"), ("g-1002", "declined"), ("g-1003", "tentative"), ("g-1003", "accepted")]
    )
    assert len({record["id"] for record in records}) == 4
    # One meeting's answers share a partition, so the change of mind arrives after the first answer.
    assert [answer for guardian, answer in published if guardian == "g-1003"] == ["tentative", "accepted"]


async def _most_attempts(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        attempts = await connection.scalar(sa.select(sa.func.max(outbox.c.attempts)))
    return int(attempts or 0)
