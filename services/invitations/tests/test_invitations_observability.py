"""/metrics, /healthz and /readyz of the invitations service, on the real broker."""

from __future__ import annotations

import socket

import httpx
import pytest
from faststream.asgi import AsgiFastStream
from prometheus_client.parser import text_string_to_metric_families

from notify_invitations.app import create_app
from notify_invitations.testing import Deployment
from notify_shared import samples
from notify_shared.testing.kafka import EventPublisher
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka


async def _get(app: AsgiFastStream, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://invitations") as client:
        return await client.get(path)


def _samples(exposition: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    }


async def test_a_new_meeting_shows_in_the_metrics_by_channel_template_language_and_status_without_personal_data(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    event = samples.meeting_created()
    async with deployment.running() as app, EventPublisher(kafka_bootstrap, deployment.topics) as publisher:
        before = (await _get(app, "/metrics")).text
        assert not _samples(before, "notify_notifications_total")
        await publisher.publish(event)

        async def counted_and_committed() -> bool:
            exposition = (await _get(app, "/metrics")).text
            lag = _samples(exposition, "notify_consumer_lag")
            committed = [
                value for labels, value in lag.items() if dict(labels)["topic"] == deployment.topics.meeting_created
            ]
            return sum(_samples(exposition, "notify_notifications_total").values()) == 4 and committed == [0.0] * 3

        await wait_until(counted_and_committed, what="four notifications in the metrics and the event committed")
        response = await _get(app, "/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    exposition = response.text
    notifications = _samples(exposition, "notify_notifications_total")
    assert notifications == {
        (
            ("channel", channel),
            ("language", "nb"),
            ("service", "invitations"),
            ("status", "sent"),
            ("template", "meeting_invitation"),
        ): 2.0
        for channel in ("email", "sms")
    }
    latency_counts = _samples(exposition, "notify_delivery_latency_seconds_count")
    assert sum(latency_counts.values()) == 4
    consumed = _samples(exposition, "faststream_received_messages_total")
    assert any(dict(labels)["handler"] == deployment.topics.meeting_created for labels in consumed)
    assert all(value == 0 for value in _samples(exposition, "notify_consumer_lag").values())
    for guardian in event.data.recipients:
        for personal in (guardian.email, guardian.phone, guardian.name, guardian.guardian_id):
            assert not personal or personal not in exposition
    assert event.id not in exposition


async def test_healthz_and_readyz_answer_200_while_the_service_runs(deployment: Deployment) -> None:
    async with deployment.running() as app:
        health = await _get(app, "/healthz")
        ready = await _get(app, "/readyz")
    assert health.status_code == 200
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


async def test_readyz_is_503_when_the_service_is_not_started(deployment: Deployment) -> None:
    app = create_app(deployment.settings)
    ready = await _get(app, "/readyz")
    assert ready.status_code == 503
    assert set(ready.json()["failed"]) == {"kafka", "database"}


async def test_readyz_is_503_naming_kafka_when_the_broker_address_is_closed(deployment: Deployment) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    settings = deployment.settings.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{closed}"})
    ready = await _get(create_app(settings), "/readyz")
    assert ready.status_code == 503
    assert "kafka" in ready.json()["failed"]
