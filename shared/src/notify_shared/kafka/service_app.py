"""The parts every service's FastStream app shares: broker, status and dead-letter publishers, AsyncAPI, the
HTTP routes for health, readiness, metrics and delivery reports, and tracing when it is switched on.

Under `faststream run` the HTTP server listens on two ports: the public `HTTP_PORT` (`/healthz` and the delivery
report routes, which providers reach through the ingress) and `ADMIN_PORT` (`/metrics`, `/readyz`, `/healthz`, for
Prometheus and the kubelet only); see `notify_shared.observability.ports`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn
from faststream._internal.basic_types import SettingField
from faststream.asgi import AsgiFastStream
from faststream.asgi.app import cast_uvicorn_params
from faststream.asgi.types import ASGIApp, Receive, Scope, Send
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from notify_shared import LICENSE_SPDX_ID
from notify_shared.contract import EventHandled, NotificationDeadLettered, NotificationStatus
from notify_shared.delivery_reports import DeliveryReportReceiver, delivery_report_routes, route_secrets
from notify_shared.kafka.broker import build_broker
from notify_shared.kafka.dead_letter_topic import ensure_dead_letter_retention
from notify_shared.kafka.decompression import install_decompression_limit
from notify_shared.kafka.outbound import KafkaDeadLetterSink, KafkaHandledSink, KafkaStatusSink
from notify_shared.observability import Readiness, ServiceMetrics, health_routes
from notify_shared.observability.ports import allowed_on, not_found
from notify_shared.observability.tracing import Tracing
from notify_shared.settings import ServiceSettings
from notify_shared.wiring import status_callback_url
from notify_shared.workers.serving import listen, supervise, supervises

logger = logging.getLogger(__name__)


class ServiceAsgiApp(AsgiFastStream):
    """`AsgiFastStream` whose HTTP server listens on `HTTP_HOST`:`HTTP_PORT` (unless `faststream run` is given
    `--host`/`--port`) and on `HTTP_HOST`:`ADMIN_PORT`. `async with app:` starts only the broker and the hooks,
    never the HTTP server.

    Called in-process (an ASGI test client, no `run`), the app answers every path, so tests reach `/metrics`
    without a port; under `run` each request is routed by the port it came in on. With `WORKERS` above 1, `run`
    supervises that many worker processes of the same command instead of serving (`notify_shared.workers`).
    """

    def __init__(
        self,
        broker: KafkaBroker,
        *,
        settings: ServiceSettings,
        service: str,
        specification: AsyncAPI,
        asgi_routes: Sequence[tuple[str, ASGIApp]],
    ) -> None:
        super().__init__(broker, specification=specification, asgi_routes=asgi_routes)
        self._http_defaults: dict[str, SettingField] = {"host": settings.http_host, "port": str(settings.http_port)}
        self._settings = settings
        self._service = service
        self._admin_port: int | None = None
        """Set while `run` serves both ports."""
        self._uvicorn: uvicorn.Server | None = None

    async def run(
        self, log_level: int = logging.INFO, run_extra_options: dict[str, SettingField] | None = None
    ) -> None:
        # As AsgiFastStream.run does (the lifespan hands the options on to the hooks), but on two sockets.
        self._log_level = log_level
        self._run_extra_options = cast_uvicorn_params(self._http_defaults | (run_extra_options or {}))
        accepted = set(inspect.signature(uvicorn.Config).parameters)
        config_options: dict[str, Any] = {
            key: value for key, value in self._run_extra_options.items() if key in accepted
        }
        public = uvicorn.Config(app=self, log_level=log_level, **config_options)
        if supervises(self._settings):
            # WORKERS > 1: this process only supervises; each worker runs this same command and app.
            code = await supervise(public, self._settings, service=self._service)
            if code:
                raise SystemExit(code)
            return
        sockets, self._admin_port = listen(public, self._settings)
        self._uvicorn = uvicorn.Server(public)
        try:
            await self._uvicorn.serve(sockets=sockets)
        finally:
            self._admin_port = None
            self._uvicorn = None

    def exit(self) -> None:
        """Stop a `run` as SIGTERM would: the server drains, then the broker and the hooks stop."""
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._admin_port is not None and not allowed_on(scope, self._admin_port):
            await not_found(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        # FastStream's own answer, "Application doesn't support regular HTTP protocol", puzzles a provider's
        # engineer who got a URL wrong; a plain JSON 404 does not.
        if scope["type"] != "http":
            await super().not_found(scope, receive, send)
            return
        await not_found(scope, receive, send)


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
    """Applies providers' delivery reports; None unless a delivery report secret is set."""
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
    install_decompression_limit(settings.kafka_max_record_bytes)
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
    secrets = route_secrets(settings)
    if any(secret is not None for secret in secrets.values()):
        receiver = DeliveryReportReceiver(database_url=settings.database_url, status_sink=status_sink, metrics=metrics)
    routes += delivery_report_routes(
        receiver,
        secrets=secrets,
        twilio_auth_token=settings.twilio_auth_token,
        status_callback_url=status_callback_url(settings, "twilio"),
        tolerance=settings.delivery_report_tolerance,
    )
    app = ServiceAsgiApp(
        broker,
        settings=settings,
        service=service,
        specification=AsyncAPI(
            title=title, version="0.1.0", description=description, license={"name": LICENSE_SPDX_ID}
        ),
        asgi_routes=routes,
    )
    _manage(app, settings=settings, service=service, receiver=receiver, tracing=tracing)
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
    app: AsgiFastStream,
    *,
    settings: ServiceSettings,
    service: str,
    receiver: DeliveryReportReceiver | None,
    tracing: Tracing | None,
) -> None:
    # The receiver opens before the service's own start-up hooks (registered later). after_shutdown runs once the
    # broker has stopped, so no span is still open when they are flushed.
    @app.on_startup
    async def warn_of_outbox_and_bound_dead_letters() -> None:
        for channel in settings.delivers_to_outbox:
            kind, setting = ("SMS", "SMS_PROVIDER") if channel == "sms" else ("email", "SMTP_HOST or EMAIL_WEBHOOK_URL")
            logger.warning(
                "%s: no %s provider is configured (%s), so %s go to the development file outbox in %s and are "
                "recorded as sent; no parent receives them",
                service,
                kind,
                setting,
                "SMS" if channel == "sms" else "emails",
                settings.outbox_dir,
            )
        await ensure_dead_letter_retention(settings)

    @app.on_startup
    async def open_delivery_reports() -> None:
        if receiver is None:
            logger.info("%s: delivery reports off (no DELIVERY_REPORT_SECRET or per-route secret)", service)
            return
        await receiver.open()
        logger.info("%s: delivery reports on at /delivery-reports/sms/<provider> and /delivery-reports/email", service)

    @app.after_shutdown
    async def close_delivery_reports_and_flush_spans() -> None:
        if receiver is not None:
            await receiver.close()
        if tracing is not None:
            tracing.shutdown()
