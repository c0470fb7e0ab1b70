"""OpenTelemetry tracing, on the real broker: with OTEL_ENABLED a consumed meeting event continues its producer's
trace, and the status events carry it on in their headers; without it no tracing middleware is installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from notify_invitations.app import create_app
from notify_invitations.testing import Deployment
from notify_shared import samples
from notify_shared.contract import encode_structured, partition_key
from notify_shared.observability import tracing
from notify_shared.testing.kafka import EventPublisher
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka

# The admin system's span that published the meeting event (W3C trace context).
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Spans go to memory instead of an OTLP endpoint."""
    exporter = InMemorySpanExporter()

    def in_memory() -> SpanExporter:
        return exporter

    monkeypatch.setattr(tracing, "otlp_span_exporter", in_memory)
    yield exporter
    exporter.clear()


async def test_a_consumed_event_continues_its_producers_trace_into_the_status_events(
    deployment: Deployment, kafka_bootstrap: str, exported: InMemorySpanExporter
) -> None:
    deployment = Deployment(
        deployment.settings.model_copy(update={"otel_enabled": True}), deployment.smtp, deployment.sms
    )
    guardian = samples.sample_guardian(1)
    event = samples.meeting_created(recipients=[guardian])
    value, headers = encode_structured(event)
    status_topic = deployment.topics.notification_status
    statuses = AIOKafkaConsumer(status_topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await statuses.start()
    try:
        async with deployment.running() as app, EventPublisher(kafka_bootstrap, deployment.topics) as publisher:
            assert any(isinstance(m, KafkaTelemetryMiddleware) for m in app.broker.middlewares)  # type: ignore[union-attr]
            await publisher.publish_raw(
                deployment.topics.meeting_created,
                value,
                key=partition_key(event),
                headers=[*headers, ("traceparent", TRACEPARENT.encode())],
            )
            status_headers: list[dict[str, bytes]] = []

            async def two_statuses() -> bool:
                batches = await statuses.getmany(timeout_ms=100)
                status_headers.extend(dict(record.headers) for records in batches.values() for record in records)
                return len(status_headers) == 2

            await wait_until(two_statuses, what="the email's and the SMS's status events")
    finally:
        await statuses.stop()

    # The app has stopped: its spans are flushed.
    spans = exported.get_finished_spans()
    (process,) = [span for span in spans if span.name == f"{deployment.topics.meeting_created} process"]
    assert process.context is not None
    assert format(process.context.trace_id, "032x") == TRACE_ID
    assert process.parent is not None
    assert format(process.parent.span_id, "016x") == PARENT_SPAN_ID
    published = [span for span in spans if span.name == f"{status_topic} publish"]
    assert len(published) == 2
    assert all(span.context is not None and format(span.context.trace_id, "032x") == TRACE_ID for span in published)
    for record_headers in status_headers:
        assert record_headers["traceparent"].decode().split("-")[1] == TRACE_ID

    personal = [guardian.name, guardian.email, guardian.phone, "Rom 204"]
    attributes = " ".join(str(value) for span in spans for value in (span.attributes or {}).values())
    assert not [item for item in personal if item and item in attributes]
    assert "notify-invitations" in str(process.resource.attributes["service.name"])


def test_without_otel_enabled_no_tracing_middleware_is_installed(deployment: Deployment) -> None:
    app = create_app(deployment.settings)

    assert deployment.settings.otel_enabled is False
    assert app.broker is not None
    assert not [m for m in app.broker.middlewares if isinstance(m, KafkaTelemetryMiddleware)]
