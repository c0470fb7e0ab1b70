"""Tracing is wired by `OTEL_ENABLED` alone, and names the service the way the OpenTelemetry SDK's variables say."""

from __future__ import annotations

import pytest
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from notify_shared.kafka.service_app import build_service_app
from notify_shared.observability.tracing import Tracing
from notify_shared.settings import ServiceSettings
from notify_shared.wiring import status_callback_url


def _service_name(tracing: Tracing) -> str:
    return str(tracing.provider.resource.attributes["service.name"])


def test_spans_are_named_after_the_service_unless_otel_service_name_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    default = Tracing("reminders", exporter=InMemorySpanExporter)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "skolevarsel-reminders")
    named = Tracing("reminders", exporter=InMemorySpanExporter)

    assert _service_name(default) == "notify-reminders"
    assert _service_name(named) == "skolevarsel-reminders"
    default.shutdown()
    named.shutdown()


def test_otel_enabled_puts_the_telemetry_middleware_first_on_the_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("notify_shared.observability.tracing.otlp_span_exporter", InMemorySpanExporter)

    traced = build_service_app(ServiceSettings(otel_enabled=True), service="digest", title="t", description="d")
    plain = build_service_app(ServiceSettings(), service="digest", title="t", description="d")

    assert isinstance(traced.broker.middlewares[0], KafkaTelemetryMiddleware)
    assert traced.tracing is not None
    assert not [m for m in plain.broker.middlewares if isinstance(m, KafkaTelemetryMiddleware)]
    assert plain.tracing is None
    traced.tracing.shutdown()


def test_each_sms_provider_reports_to_its_own_route_under_the_callback_url() -> None:
    settings = ServiceSettings(sms_status_callback_url="https://invitations.notify.example/delivery-reports/sms/")

    assert status_callback_url(settings, "twilio") == "https://invitations.notify.example/delivery-reports/sms/twilio"
    assert status_callback_url(ServiceSettings(), "twilio") is None
