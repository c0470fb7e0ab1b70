"""Metrics from the delivery core, and `/readyz` naming what is unreachable."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from notify_shared import samples
from notify_shared.channels import DeliveryReceipt, OutgoingEmail, OutgoingSms, TransientDeliveryError
from notify_shared.contract import Channel
from notify_shared.delivery import (
    Backoff,
    CollectingStatusSink,
    Dispatcher,
    PlannedNotification,
    RetryWorker,
    SourceEventRef,
)
from notify_shared.ledger import DeliveryLedger, create_engine
from notify_shared.observability import Readiness, ServiceMetrics, health_routes
from notify_shared.observability.http import database_check
from notify_shared.rendering import render_notification

EVENT_TIME = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
ACCEPTED_AT = EVENT_TIME + timedelta(seconds=42)


class FlakyChannel:
    """Fails once with a transient error, then accepts everything."""

    name = "flaky"

    def __init__(self) -> None:
        self.failures = 1

    async def send_email(self, message: OutgoingEmail) -> DeliveryReceipt:
        if self.failures:
            self.failures -= 1
            raise TransientDeliveryError("smtp_421")
        return DeliveryReceipt(provider="test", provider_message_id=message.notification_id)

    async def send_sms(self, message: OutgoingSms) -> DeliveryReceipt:
        return DeliveryReceipt(provider="test", provider_message_id=message.notification_id)

    async def aclose(self) -> None:
        return None


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[DeliveryLedger]:
    ledger = await DeliveryLedger.connect(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    try:
        yield ledger
    finally:
        await ledger.aclose()


async def test_a_retried_then_sent_email_counts_the_retry_the_outcome_and_its_latency(
    ledger: DeliveryLedger,
) -> None:
    metrics = ServiceMetrics("invitations")
    now = [ACCEPTED_AT]
    dispatcher = Dispatcher(
        ledger=ledger,
        render=render_notification,
        email=FlakyChannel(),
        sms=FlakyChannel(),
        status_sink=CollectingStatusSink(),
        email_sender="Bjølsen skole <no-reply@bjolsen.example.no>",
        backoff=Backoff(base_seconds=1, max_seconds=8),
        clock=lambda: now[0],
        metrics=metrics,
    )
    guardian = samples.sample_guardian(1)
    event = samples.meeting_created(recipients=[guardian])
    await dispatcher.dispatch(
        [
            PlannedNotification(
                source=SourceEventRef(source=event.source, id=event.id, type=event.type, time=EVENT_TIME),
                school=event.data.school,
                guardian=guardian,
                channel=Channel.EMAIL,
                template="meeting_invitation",
                context={"school": event.data.school, "meeting": event.data.meeting, "guardian": guardian},
            )
        ]
    )
    now[0] += timedelta(seconds=10)  # past the first backoff (at most a second)
    assert await RetryWorker(dispatcher, owner="test", clock=lambda: now[0]).run_due() == 1

    registry = metrics.registry
    labels = {"service": "invitations", "channel": "email", "template": "meeting_invitation"}
    assert _sample(registry, "notify_delivery_retries_total", **labels) == 1
    assert _sample(registry, "notify_notifications_total", **labels, language="nb", status="sent") == 1
    assert _sample(registry, "notify_delivery_latency_seconds_count", **labels) == 1
    assert _sample(registry, "notify_delivery_latency_seconds_sum", **labels) == 52
    exposition = (await metrics.render()).decode()
    assert guardian.email is not None
    assert guardian.email not in exposition
    assert event.id not in exposition


async def test_two_apps_in_one_process_keep_their_own_metrics() -> None:
    first, second = ServiceMetrics("invitations"), ServiceMetrics("invitations")
    first.dead_lettered("malformed_json")
    assert _sample(first.registry, "notify_dead_letters_total", service="invitations", reason="malformed_json") == 1
    assert _sample(second.registry, "notify_dead_letters_total", service="invitations", reason="malformed_json") == 0


async def _get(app: AsgiFastStream, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client:
        return await client.get(path)


@pytest.mark.kafka
async def test_readyz_is_503_and_names_the_database_when_it_is_unreachable(kafka_bootstrap: str) -> None:
    broker = KafkaBroker(kafka_bootstrap)
    readiness = Readiness(broker, timeout=5)
    port = _closed_port()
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/notify")
    readiness.add_check("database", database_check(engine))
    app = AsgiFastStream(broker, asgi_routes=health_routes(readiness=readiness, metrics=ServiceMetrics("test")))
    try:
        async with broker:
            await broker.start()
            response = await _get(app, "/readyz")
    finally:
        await engine.dispose()
    assert response.status_code == 503
    failed = response.json()["failed"]
    assert list(failed) == ["database"]
    # The answer is public: it names the dependency, never where it lives or who logs in to it.
    for detail in (str(port), "127.0.0.1", "postgres@", "asyncpg"):
        assert detail not in response.text
    assert (await _get(app, "/healthz")).status_code == 200


async def test_readyz_is_503_and_names_kafka_when_the_broker_is_not_connected() -> None:
    broker = KafkaBroker(f"127.0.0.1:{_closed_port()}")
    readiness = Readiness(broker, timeout=1)
    app = AsgiFastStream(broker, asgi_routes=health_routes(readiness=readiness, metrics=ServiceMetrics("test")))
    response = await _get(app, "/readyz")
    assert response.status_code == 503
    assert set(response.json()["failed"]) == {"kafka", "database"}
