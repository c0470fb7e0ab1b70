"""/healthz, /readyz and /metrics of the ingest, the same as every service's, on the real broker."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from notify_ingest.app import create_app
from notify_ingest.settings import IngestSettings
from notify_ingest.testing import OTHER_SCHOOL, OTHER_SCHOOL_KEY, SCHOOL, RunningIngest
from notify_shared import samples

pytestmark = pytest.mark.kafka


def _samples(exposition: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    }


async def test_healthz_and_readyz_answer_200_while_the_ingest_runs(ingest: RunningIngest) -> None:
    health = await ingest.client.get("/healthz")
    ready = await ingest.client.get("/readyz")
    assert (health.status_code, health.text) == (200, "ok\n")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def _get(settings: IngestSettings, path: str) -> httpx.Response:
    app = create_app(settings)  # not started: no lifespan run
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as client:
        return await client.get(path)


async def test_readyz_is_503_naming_kafka_and_the_database_before_the_ingest_is_started(
    settings: IngestSettings,
) -> None:
    ready = await _get(settings, "/readyz")
    assert ready.status_code == 503
    assert set(ready.json()["failed"]) == {"kafka", "database"}


async def test_readyz_is_503_naming_kafka_when_the_broker_address_is_closed(settings: IngestSettings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    ready = await _get(settings.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{closed}"}), "/readyz")
    assert ready.status_code == 503
    assert "kafka" in ready.json()["failed"]


async def test_metrics_count_requests_by_school_and_outcome_without_personal_data_or_event_ids(
    ingest: RunningIngest,
) -> None:
    event = samples.meeting_created()
    document = json.loads(event.model_dump_json())
    await ingest.post_event(document)
    await ingest.post_event(document)
    await ingest.post_event(document, key=OTHER_SCHOOL_KEY)
    await ingest.post_event(document, key="no-such-key-of-anyone")
    await ingest.post_event(b"{", content_type="application/cloudevents+json")

    response = await ingest.client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    requests = _samples(response.text, "notify_ingest_requests_total")
    assert requests == {
        (("outcome", outcome), ("school", school), ("service", "ingest")): 1.0
        for school, outcome in [
            (SCHOOL, "accepted"),
            (SCHOOL, "duplicate"),
            (OTHER_SCHOOL, "forbidden"),
            ("unknown", "unauthorized"),
            (SCHOOL, "invalid"),
        ]
    }
    published = _samples(response.text, "faststream_published_messages_total")
    assert sum(published.values()) == 1
    assert event.id not in response.text
    for guardian in event.data.recipients:
        for personal in (guardian.name, guardian.email, guardian.phone, guardian.guardian_id):
            assert personal
            assert personal not in response.text
