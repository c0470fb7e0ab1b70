"""Two replicas of the service on one PostgreSQL database: every answer is published once, in order per meeting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from notify_responses.testing import RunningResponses, isolated_settings, link_for, running_responses
from notify_shared import samples
from notify_shared.testing.clocks import SettableClock
from notify_shared.testing.databases import fresh_postgres_database
from notify_shared.testing.kafka import EventPublisher, TopicReader
from notify_shared.testing.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

CHANGES_OF_MIND = ("accepted", "declined", "tentative", "accepted", "declined", "accepted")


async def _all_published(replicas: list[RunningResponses]) -> bool:
    return all([await replica.runtime.store.waiting() == 0 for replica in replicas])


async def test_two_replicas_publish_every_answer_exactly_once_and_in_order(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Any
) -> None:
    async with fresh_postgres_database(postgres_url) as database_url:
        first = isolated_settings(kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path / "a", database_url=database_url)
        # The second replica: the same topics, consumer group and database, its own process state.
        second = isolated_settings(
            kafka_bootstrap=kafka_bootstrap,
            work_dir=tmp_path / "b",
            database_url=database_url,
            topic_prefix=first.topic_prefix,
            consumer_group=first.consumer_group,
        )
        meetings = [
            samples.meeting_created(
                meeting=samples.sample_meeting(meeting_id=f"m-{number}"),
                recipients=[samples.sample_guardian(guardian) for guardian in (1, 2, 3)],
            )
            for number in (1, 2)
        ]
        clock = SettableClock(samples.SAMPLE_NOW)
        async with running_responses(first, clock=clock) as one, running_responses(second, clock=clock) as two:
            async with EventPublisher(first.kafka_bootstrap_servers, first.topics) as publisher:
                for meeting in meetings:
                    await publisher.publish(meeting)
            tokens = [link_for(first, meeting, guardian) for meeting in meetings for guardian in range(3)]

            async def every_link_open() -> bool:
                return all([(await one.open(token)).status_code == 200 for token in tokens])

            await wait_until(every_link_open, within=30, what="both meetings known")

            # Each parent changes their mind six times, alternately through each replica, all parents at once:
            # both relays are woken by answers all the time.
            async def parent(token: str) -> list[str]:
                given = []
                for turn, answer in enumerate(CHANGES_OF_MIND):
                    replica = (one, two)[turn % 2]
                    response = await replica.answer(token, answer=answer)
                    assert response.status_code == 200
                    given.append(answer)
                return given

            await asyncio.gather(*(parent(token) for token in tokens))
            await wait_until(lambda: _all_published([one, two]), within=60, what="both outboxes published")

    async with TopicReader(first.kafka_bootstrap_servers, first.topics.meeting_rsvp) as reader:
        records = await reader.read_to_end()
    ids = [record["id"] for record in records]
    assert len(ids) == len(tokens) * len(CHANGES_OF_MIND)
    assert len(set(ids)) == len(ids), "an answer was published twice"
    for meeting in meetings:
        for guardian in ("g-1001", "g-1002", "g-1003"):
            answers = [
                record["data"]["answer"]
                for record in records
                if record["data"]["meeting_id"] == meeting.data.meeting.meeting_id
                and record["data"]["guardian_id"] == guardian
            ]
            # One meeting's answers share a partition: each parent's changes of mind arrive in the order given.
            assert answers == list(CHANGES_OF_MIND)
