"""The parts every service's FastStream app shares: broker, status and dead-letter publishers, AsyncAPI."""

from __future__ import annotations

from dataclasses import dataclass

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from notify_shared.contract import NotificationDeadLettered, NotificationStatus
from notify_shared.kafka.broker import build_broker
from notify_shared.kafka.outbound import KafkaDeadLetterSink, KafkaStatusSink
from notify_shared.settings import ServiceSettings


@dataclass(frozen=True)
class ServiceApp:
    """A service's app and the sinks its handlers and delivery core publish to."""

    app: FastStream
    broker: KafkaBroker
    status_sink: KafkaStatusSink
    dead_letters: KafkaDeadLetterSink


def build_service_app(settings: ServiceSettings, *, service: str, title: str, description: str) -> ServiceApp:
    """Broker and publishers for `service`; include the service's router in `broker` before starting."""
    topics = settings.topics
    broker = build_broker(settings, client_id=f"notify-{service}")
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
    app = FastStream(broker, specification=AsyncAPI(title=title, version="0.1.0", description=description))
    return ServiceApp(
        app=app,
        broker=broker,
        status_sink=KafkaStatusSink(status_publisher, service=service),
        dead_letters=KafkaDeadLetterSink(dead_letter_publisher),
    )
