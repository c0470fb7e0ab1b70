"""When Kafka does not confirm, the client hears 503 and its retry publishes: the logic, without a broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from notify_ingest.ingestion import Ingestor, Outcome
from notify_ingest.publishing import KafkaRecord, Published
from notify_ingest.store import AcceptedEvents, AcceptedId
from notify_shared import samples
from notify_shared.topics import Topics

SCHOOL = "nor-0301-bjolsen"


class FlakyKafka:
    """Refuses (or never answers) the first `failures` publishes, then confirms."""

    def __init__(self, *, failures: int, hang: bool = False) -> None:
        self.failures = failures
        self.hang = hang
        self.published: list[KafkaRecord] = []

    async def publish(self, record: KafkaRecord) -> Published:
        if self.failures:
            self.failures -= 1
            if self.hang:
                await asyncio.Event().wait()
            raise ConnectionError("broker unreachable")
        self.published.append(record)
        return Published(partition=0, offset=len(self.published) - 1)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AcceptedEvents]:
    store = await AcceptedEvents.connect(f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}", lease_seconds=60)
    yield store
    await store.aclose()


def _ingestor(store: AcceptedEvents, kafka: FlakyKafka, *, timeout: float = 5.0) -> Ingestor:
    return Ingestor(store=store, publish=kafka.publish, topics=Topics(), publish_timeout_seconds=timeout)


@pytest.mark.parametrize("hang", [False, True], ids=["refused", "no answer"])
async def test_an_unconfirmed_publish_is_unavailable_and_the_retry_publishes_at_once(
    store: AcceptedEvents, hang: bool
) -> None:
    kafka = FlakyKafka(failures=1, hang=hang)
    ingestor = _ingestor(store, kafka, timeout=0.2)
    body = samples.meeting_created().model_dump_json().encode()

    failed = await ingestor.ingest(body, "application/cloudevents+json", school_id=SCHOOL)
    retried = await ingestor.ingest(body, "application/cloudevents+json", school_id=SCHOOL)

    assert failed.outcome is Outcome.UNAVAILABLE
    assert failed.retry_after_seconds is not None
    assert retried.outcome is Outcome.ACCEPTED
    assert len(kafka.published) == 1
    assert kafka.published[0].topic == "meeting.created"
    stored = await store.get(AcceptedId(SCHOOL, samples.SOURCE, retried.event_id or ""))
    assert stored is not None
    assert (stored.state, stored.attempts, stored.partition, stored.offset) == ("published", 2, 0, 0)


async def test_the_rules_are_the_consumers_rules_so_an_event_the_services_would_dead_letter_is_refused(
    store: AcceptedEvents,
) -> None:
    kafka = FlakyKafka(failures=0)
    document = (
        samples.meeting_created().model_dump_json().replace('"sms_sender_id":"Bjolsen"', '"sms_sender_id":"12345"')
    )

    result = await _ingestor(store, kafka).ingest(document.encode(), "application/cloudevents+json", school_id=SCHOOL)

    assert result.outcome is Outcome.INVALID
    assert result.reason == "schema_violation"
    assert [problem.field for problem in result.problems] == ["data.school.sms_sender_id"]
    assert kafka.published == []
