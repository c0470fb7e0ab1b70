"""The parts every service's FastStream app shares: broker, status and dead-letter publishers, AsyncAPI, and the
HTTP routes for health, readiness and metrics."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from faststream._internal.basic_types import SettingField
from faststream.asgi import AsgiFastStream
from faststream.asgi.types import ASGIApp
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from notify_shared.contract import NotificationDeadLettered, NotificationStatus
from notify_shared.kafka.broker import build_broker
from notify_shared.kafka.outbound import KafkaDeadLetterSink, KafkaStatusSink
from notify_shared.observability import Readiness, ServiceMetrics, health_routes
from notify_shared.settings import ServiceSettings


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
    metrics: ServiceMetrics
    readiness: Readiness


def build_service_app(settings: ServiceSettings, *, service: str, title: str, description: str) -> ServiceApp:
    """Broker and publishers for `service`; include the service's router in `broker` before starting."""
    topics = settings.topics
    metrics = ServiceMetrics(service)
    broker = build_broker(settings, client_id=f"notify-{service}", middlewares=(metrics.consumer_middleware(),))
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
    metrics.watch_consumer_lag(broker)
    readiness = Readiness(broker)
    app = ServiceAsgiApp(
        broker,
        settings=settings,
        specification=AsyncAPI(title=title, version="0.1.0", description=description),
        asgi_routes=health_routes(readiness=readiness, metrics=metrics),
    )
    return ServiceApp(
        app=app,
        broker=broker,
        status_sink=KafkaStatusSink(status_publisher, service=service),
        dead_letters=KafkaDeadLetterSink(dead_letter_publisher, on_published=metrics.dead_lettered),
        metrics=metrics,
        readiness=readiness,
    )
