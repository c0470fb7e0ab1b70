"""POST /v1/events answers like docs/ingest.md says, and what it accepts lands on Kafka as the contract says."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from notify_ingest.settings import IngestSettings
from notify_ingest.testing import OTHER_SCHOOL_KEY, SCHOOL, SCHOOL_KEY, RunningIngest, records_on, running_ingest
from notify_shared import samples
from notify_shared.contract import CLOUDEVENTS_JSON, CloudEvent
from notify_shared.kafka.inbound import decode_for_topic

pytestmark = pytest.mark.kafka


def _document(event: CloudEvent) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(event.model_dump_json(exclude_none=True))
    return document


@pytest.mark.parametrize(
    ("event", "kafka_key"),
    [
        (samples.meeting_created(), b"m-2026-7b-foreldremote"),
        (samples.meeting_updated(), b"m-2026-7b-foreldremote"),
        (samples.meeting_cancelled(), b"m-2026-7b-foreldremote"),
        (samples.absence_noted(), b"p-77120"),
        (samples.message_posted(), b"c-7b"),
    ],
    ids=lambda value: getattr(value, "type", None) or value.decode(),
)
async def test_an_accepted_event_is_on_its_topic_once_keyed_as_the_contract_says(
    ingest: RunningIngest, settings: IngestSettings, event: CloudEvent, kafka_key: bytes
) -> None:
    response = await ingest.post_event(_document(event))

    assert response.status_code == 202
    assert response.json() == {"id": event.id, "type": event.type, "duplicate": False}
    topic = settings.topics.for_event_type(event.type)
    (record,) = await records_on(settings.kafka_bootstrap_servers, topic)
    assert record.key == kafka_key
    assert dict(record.headers)["content-type"] == CLOUDEVENTS_JSON.encode()
    # What the services will read is the very event that was posted.
    assert decode_for_topic(record.value, record.headers, event.type) == event


async def test_plain_application_json_and_the_x_api_key_header_are_accepted_too(ingest: RunningIngest) -> None:
    event = samples.meeting_created()
    response = await ingest.post_event(
        _document(event), key=None, content_type="application/json; charset=utf-8", headers={"X-API-Key": SCHOOL_KEY}
    )
    assert response.status_code == 202
    assert response.json()["id"] == event.id


async def test_an_event_that_breaks_the_contract_is_400_naming_each_field_and_nothing_is_published(
    ingest: RunningIngest, settings: IngestSettings
) -> None:
    event = samples.meeting_created()
    document = _document(event)
    del document["data"]["meeting"]["location"]
    del document["data"]["recipients"][0]["has_parental_responsibility"]

    response = await ingest.post_event(document)

    assert response.status_code == 400
    problem = response.json()
    assert problem["error"] == "invalid_event"
    assert problem["reason"] == "schema_violation"
    assert problem["event_id"] == event.id
    assert problem["errors"] == [
        {"field": "data.meeting.location", "message": "Field required"},
        {"field": "data.recipients.0.has_parental_responsibility", "message": "Field required"},
    ]
    # Field paths and messages only: nothing the guardian is, not even echoed back.
    assert "Kari" not in response.text
    assert await records_on(settings.kafka_bootstrap_servers, settings.topics.meeting_created) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"specversion": "1.0", "id": ', "malformed_json"),
        (b"[1, 2, 3]", "not_a_cloudevent"),
        (
            b'{"specversion": "1.0", "id": "e-1", "source": "/x", "type": "meeting.moved", "data": {}}',
            "unknown_event_type",
        ),
    ],
)
async def test_a_body_that_is_no_usable_cloudevent_is_400_with_the_dead_letter_reason(
    ingest: RunningIngest, body: bytes, reason: str
) -> None:
    response = await ingest.post_event(body)
    assert response.status_code == 400
    problem = response.json()
    assert problem["reason"] == reason
    assert len(problem["errors"]) == 1
    assert problem["errors"][0]["field"] is None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-key-of-any-school"},
        {"X-API-Key": "not-a-key-of-any-school"},
        {"Authorization": f"Basic {SCHOOL_KEY}"},
    ],
    ids=["no key", "unknown bearer", "unknown x-api-key", "not a bearer"],
)
async def test_without_a_valid_key_it_is_401_and_nothing_is_published(
    ingest: RunningIngest, settings: IngestSettings, headers: dict[str, str]
) -> None:
    response = await ingest.post_event(_document(samples.meeting_created()), key=None, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "unauthorized"
    assert await records_on(settings.kafka_bootstrap_servers, settings.topics.meeting_created) == []


async def test_another_schools_key_is_403_and_nothing_is_published(
    ingest: RunningIngest, settings: IngestSettings
) -> None:
    event = samples.meeting_created()
    assert event.data.school.id == SCHOOL

    response = await ingest.post_event(_document(event), key=OTHER_SCHOOL_KEY)

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert await records_on(settings.kafka_bootstrap_servers, settings.topics.meeting_created) == []


@pytest.fixture
async def small_ingest(settings: IngestSettings) -> AsyncIterator[RunningIngest]:
    async with running_ingest(settings.model_copy(update={"max_body_bytes": 2048})) as running:
        yield running


async def test_a_body_over_the_limit_is_413(small_ingest: RunningIngest) -> None:
    event = samples.meeting_created(recipients=[samples.sample_guardian(number) for number in range(1, 20)])
    body = event.model_dump_json().encode()
    assert len(body) > 2048

    response = await small_ingest.post_event(body)

    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


async def test_a_streamed_body_without_a_length_is_cut_off_at_the_limit_with_413(small_ingest: RunningIngest) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" " * 1000

    response = await small_ingest.client.post(
        "/v1/events",
        content=chunks(),
        headers={"Authorization": f"Bearer {SCHOOL_KEY}", "Content-Type": CLOUDEVENTS_JSON},
    )
    assert response.status_code == 413


async def test_a_body_that_is_not_json_by_its_content_type_is_415(ingest: RunningIngest) -> None:
    response = await ingest.post_event(_document(samples.meeting_created()), content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
