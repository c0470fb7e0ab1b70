"""The parts every service's FastStream app shares: broker, status and dead-letter publishers, AsyncAPI, the
HTTP routes for health, readiness, metrics and delivery reports, and tracing when it is switched on."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from faststream._internal.basic_types import SettingField
from faststream.asgi import AsgiFastStream
from faststream.asgi.types import ASGIApp
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from notify_shared.contract import EventHandled, NotificationDeadLettered, NotificationStatus
from notify_shared.delivery_reports import DeliveryReportReceiver, delivery_report_routes
from notify_shared.kafka.broker import build_broker
from notify_shared.kafka.outbound import KafkaDeadLetterSink, KafkaHandledSink, KafkaStatusSink
from notify_shared.observability import Readiness, ServiceMetrics, health_routes
from notify_shared.observability.tracing import Tracing
from notify_shared.settings import ServiceSettings
from notify_shared.wiring import status_callback_url

logger = logging.getLogger(__name__)


class ServiceAsgiApp(AsgiFastStream):
    """`AsgiFastStream` whose HTTP server listens on `HTTP_HOST`:`HTTP_PORT` unless `faststream run` is given
    `--host`/`--port`. `async with app:` starts only the broker and the hooks, never the HTTP server."""

    def __init__(
        self,
        broker: KafkaBroker,
        *,
        settings: ServiceSettings,
        specification: AsyncAPI,
        asgi_routes: Sequence[tuple[str, ASGIApp]],
    ) -> None:
        super().__init__(broker, specification=specification, asgi_routes=asgi_routes)
        self._http_defaults: dict[str, SettingField] = {"host": settings.http_host, "port": str(settings.http_port)}

    async def run(
        self, log_level: int = logging.INFO, run_extra_options: dict[str, SettingField] | None = None
    ) -> None:
        await super().run(log_level, self._http_defaults | (run_extra_options or {}))


@dataclass(frozen=True)
class ServiceApp:
    """A service's app and the sinks its handlers and delivery core publish to."""

    app: AsgiFastStream
    broker: KafkaBroker
    status_sink: KafkaStatusSink
    dead_letters: KafkaDeadLetterSink
    handled: KafkaHandledSink
    """Publishes `event.handled`: what came of each input event."""
    metrics: ServiceMetrics
    readiness: Readiness
    delivery_reports: DeliveryReportReceiver | None
    """Applies providers' delivery reports; None unless `DELIVERY_REPORT_SECRET` is set."""
    tracing: Tracing | None
    """None unless `OTEL_ENABLED` is true."""


def build_service_app(settings: ServiceSettings, *, service: str, title: str, description: str) -> ServiceApp:
    """Broker and publishers for `service`; include the service's router in `broker` before starting."""
    topics = settings.topics
    metrics = ServiceMetrics(service)
    tracing = Tracing(service) if settings.otel_enabled else None
    # Tracing first, so the metrics middleware's time is part of the span.
    middlewares = (*([tracing.middleware] if tracing else []), metrics.consumer_middleware())
    broker = build_broker(settings, client_id=f"notify-{service}", middlewares=middlewares)
    status_publisher = broker.publisher(
        topics.notification_status,
        schema=NotificationStatus,
        title=f"{service}:notification.status",
        description="One event per step of every notification: ids, channel, template, language and status.",
    )
    dead_letter_publisher = broker.publisher(
        topics.dead_letter,
        schema=NotificationDeadLettered,
        title=f"{service}:notification.dead-letter",
        description="Records that could not be used, with the reason and the original bytes and headers.",
    )
    handled_publisher = broker.publisher(
        topics.event_handled,
        schema=EventHandled,
        title=f"{service}:event.handled",
        description="One event per input event handled: what came of it (notified, nothing to send, stale, …).",
    )
    metrics.watch_consumer_lag(broker)
    readiness = Readiness(broker)
    status_sink = KafkaStatusSink(status_publisher, service=service)
    routes = health_routes(readiness=readiness, metrics=metrics)
    receiver = None
    if settings.delivery_report_secret is not None:
        receiver = DeliveryReportReceiver(database_url=settings.database_url, status_sink=status_sink, metrics=metrics)
        routes += delivery_report_routes(
            receiver,
            secret=settings.delivery_report_secret,
            twilio_auth_token=settings.twilio_auth_token,
            status_callback_url=status_callback_url(settings, "twilio"),
        )
    app = ServiceAsgiApp(
        broker,
        settings=settings,
        specification=AsyncAPI(title=title, version="0.1.0", description=description),
        asgi_routes=routes,
    )
    _manage(app, service=service, receiver=receiver, tracing=tracing)
    return ServiceApp(
        app=app,
        broker=broker,
        status_sink=status_sink,
        dead_letters=KafkaDeadLetterSink(dead_letter_publisher, on_published=metrics.dead_lettered),
        handled=KafkaHandledSink(handled_publisher, service=service),
        metrics=metrics,
        readiness=readiness,
        delivery_reports=receiver,
        tracing=tracing,
    )


def _manage(
    app: AsgiFastStream, *, service: str, receiver: DeliveryReportReceiver | None, tracing: Tracing | None
) -> None:
    # The receiver opens before the service's own start-up hooks (registered later). after_shutdown runs once the
    # broker has stopped, so no span is still open when they are flushed.
    @app.on_startup
    async def open_delivery_reports() -> None:
        if receiver is None:
            logger.info("%s: delivery reports off (DELIVERY_REPORT_SECRET is not set)", service)
            return
        await receiver.open()
        logger.info("%s: delivery reports on at /delivery-reports/sms/<provider> and /delivery-reports/email", service)

    @app.after_shutdown
    async def close_delivery_reports_and_flush_spans() -> None:
        if receiver is not None:
            await receiver.close()
        if tracing is not None:
            tracing.shutdown()
