"""OpenTelemetry tracing through FastStream's `KafkaTelemetryMiddleware`, off unless `OTEL_ENABLED=true`.

When on, every consumed event gets a `<topic> process` span, and every event a service publishes (status events,
dead letters) a `<topic> publish` span whose context travels in the record's `traceparent` header. An event that
arrives with a `traceparent` continues its producer's trace, so one meeting can be followed from the school's
admin system through a service to each status event.

Spans are exported by OTLP over HTTP. Where to and how is the OpenTelemetry SDK's own business, through its
standard variables: `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`),
`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME` (default `notify-<service>`), `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`.

Span attributes are FastStream's: topic, partition, offset, message key (a meeting, pupil or notification id),
message and correlation ids and the payload's size. Never the payload itself, so no personal data.
"""

from __future__ import annotations

from collections.abc import Callable

from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter


def otlp_span_exporter() -> SpanExporter:
    """The OTLP/HTTP exporter; it reads its endpoint, headers and timeout from the `OTEL_EXPORTER_OTLP_*` variables."""
    # Imported here: the exporter pulls in protobuf, which a service with tracing off never needs.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

    return OTLPSpanExporter()


class Tracing:
    """A service's tracer provider and the FastStream middleware that uses it; `shutdown()` flushes the spans."""

    def __init__(self, service: str, *, exporter: Callable[[], SpanExporter] | None = None) -> None:
        self.provider = TracerProvider(resource=_resource(f"notify-{service}"))
        # Batched: spans leave in the background, never on the path of a notification.
        self.provider.add_span_processor(BatchSpanProcessor((exporter or otlp_span_exporter)()))
        # This provider, not the global one: tests build several apps in one process, and a library's own
        # global provider stays untouched.
        self.middleware = KafkaTelemetryMiddleware(tracer_provider=self.provider)

    def shutdown(self) -> None:
        """Export what is still buffered and stop; spans after this are dropped."""
        self.provider.shutdown()


def _resource(default_service_name: str) -> Resource:
    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; our name is only the fallback.
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: default_service_name}))
    return resource
