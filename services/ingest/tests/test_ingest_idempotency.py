"""One event id, one record on Kafka: repeated, concurrent and cross-replica posts, and recovery after a crash."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from notify_ingest.settings import IngestSettings
from notify_ingest.store import AcceptedEvents, AcceptedId
from notify_ingest.testing import SCHOOL, RunningIngest, isolated_settings, records_on, running_ingest
from notify_shared import samples
from notify_shared.contract import CloudEvent

pytestmark = pytest.mark.kafka


def _document(event: CloudEvent) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(event.model_dump_json(exclude_none=True))
    return document


async def _ids_on_kafka(settings: IngestSettings, event_type: str) -> list[str]:
    records = await records_on(settings.kafka_bootstrap_servers, settings.topics.for_event_type(event_type))
    return [json.loads(record.value)["id"] for record in records]


async def test_posting_the_same_event_again_answers_202_duplicate_and_publishes_nothing_more(
    ingest: RunningIngest, settings: IngestSettings
) -> None:
    event = samples.meeting_created()

    first = await ingest.post_event(_document(event))
    again = await ingest.post_event(_document(event))

    assert first.status_code == again.status_code == 202
    assert first.json() == {"id": event.id, "type": "meeting.created", "duplicate": False}
    assert again.json() == {"id": event.id, "type": "meeting.created", "duplicate": True}
    assert await _ids_on_kafka(settings, event.type) == [event.id]
    stored = await ingest.runtime.store.get(AcceptedId(SCHOOL, event.source, event.id))
    assert stored is not None
    assert stored.state == "published"
    assert stored.school_id == SCHOOL


async def test_concurrent_posts_of_one_event_publish_it_once(ingest: RunningIngest, settings: IngestSettings) -> None:
    event = samples.meeting_created()

    responses = await asyncio.gather(*(ingest.post_event(_document(event)) for _ in range(12)))

    assert [response.status_code for response in responses] == [202] * 12
    assert sorted(response.json()["duplicate"] for response in responses) == [False] + [True] * 11
    assert await _ids_on_kafka(settings, event.type) == [event.id]


async def test_two_replicas_on_one_database_publish_a_concurrently_posted_event_once(
    kafka_bootstrap: str, tmp_path: Path, database_url: str
) -> None:
    settings = isolated_settings(kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path, database_url=database_url)
    events = [samples.absence_noted() for _ in range(5)]

    async with running_ingest(settings) as first, running_ingest(settings) as second:
        responses = await asyncio.gather(
            *(replica.post_event(_document(event)) for event in events for replica in (first, second, first, second))
        )

    assert [response.status_code for response in responses] == [202] * 20
    accepted = sorted(response.json()["id"] for response in responses if not response.json()["duplicate"])
    assert accepted == sorted(event.id for event in events)
    assert sorted(await _ids_on_kafka(settings, "absence.noted")) == sorted(event.id for event in events)


async def test_the_same_id_with_other_content_is_409_and_the_first_content_stands(
    ingest: RunningIngest, settings: IngestSettings
) -> None:
    event = samples.meeting_created()
    changed = samples.meeting_created(
        event_id=event.id, meeting=samples.sample_meeting(location="Gymsalen, Bjølsen skole")
    )

    assert (await ingest.post_event(_document(event))).status_code == 202
    response = await ingest.post_event(_document(changed))

    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert await _ids_on_kafka(settings, event.type) == [event.id]


async def test_an_id_left_pending_by_a_crashed_request_is_published_by_the_retry_after_its_lease(
    settings: IngestSettings,
) -> None:
    # A replica recorded the id as pending and died before publishing (or before marking it published).
    event = samples.meeting_created()
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    crashed = await AcceptedEvents.connect(
        settings.database_url, lease_seconds=settings.claim_lease_seconds, clock=lambda: an_hour_ago
    )
    async with running_ingest(settings) as ingest:
        from notify_ingest.publishing import record_for  # noqa: PLC0415 - the record the crashed replica built

        record = record_for(event, settings.topics)
        await crashed.claim(
            AcceptedId(SCHOOL, event.source, event.id), event_type=event.type, digest=record.digest, topic=record.topic
        )
        await crashed.aclose()

        response = await ingest.post_event(_document(event))

        assert response.status_code == 202
        assert response.json()["duplicate"] is False
        stored = await ingest.runtime.store.get(AcceptedId(SCHOOL, event.source, event.id))
    assert stored is not None
    assert stored.state == "published"
    assert stored.attempts == 2
    assert await _ids_on_kafka(settings, event.type) == [event.id]


async def test_while_another_replica_holds_the_id_a_post_is_503_with_retry_after(settings: IngestSettings) -> None:
    event = samples.meeting_created()
    quick = settings.model_copy(update={"publish_timeout_seconds": 0.3})
    async with running_ingest(quick) as ingest:
        from notify_ingest.publishing import record_for  # noqa: PLC0415

        record = record_for(event, quick.topics)
        # Another replica's live claim, which it never finishes within this request's wait.
        await ingest.runtime.store.claim(
            AcceptedId(SCHOOL, event.source, event.id), event_type=event.type, digest=record.digest, topic=record.topic
        )

        response = await ingest.post_event(_document(event))

    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert 1 <= int(response.headers["retry-after"]) <= quick.claim_lease_seconds + 1
    assert await _ids_on_kafka(quick, event.type) == []
