"""Publishing the platform's own events (status, dead letters) as structured CloudEvents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from notify_shared.contract import (
    CLOUDEVENTS_JSON,
    CloudEvent,
    EventHandled,
    EventHandledReport,
    NotificationDeadLettered,
    NotificationStatus,
    NotificationStatusReport,
    partition_key,
)
from notify_shared.ids import new_event_id, service_source


class KafkaPublisher(Protocol):
    """What we use of a FastStream Kafka publisher (`broker.publisher(topic)`)."""

    async def publish(
        self, message: Any, /, *, key: bytes | None = ..., headers: dict[str, str] | None = ...
    ) -> Any: ...


async def publish_event(publisher: KafkaPublisher, event: CloudEvent) -> None:
    """Publish in structured mode, keyed like the entity, so consumers in any language can read it whole."""
    await publisher.publish(
        event.model_dump_json(exclude_none=True).encode(),
        key=partition_key(event),
        headers={"content-type": CLOUDEVENTS_JSON},
    )


class KafkaStatusSink:
    """Publishes `notification.status` events."""

    def __init__(self, publisher: KafkaPublisher, *, service: str) -> None:
        self._publisher = publisher
        self._source = service_source(service)

    async def publish_status(self, report: NotificationStatusReport) -> None:
        event = NotificationStatus(
            id=new_event_id(),
            source=self._source,
            time=report.occurred_at,
            subject=report.notification_id,
            data=report,
        )
        await publish_event(self._publisher, event)


class KafkaHandledSink:
    """Publishes `event.handled` events, keyed by the input event's id."""

    def __init__(self, publisher: KafkaPublisher, *, service: str) -> None:
        self._publisher = publisher
        self._source = service_source(service)

    async def publish_handled(self, report: EventHandledReport) -> None:
        event = EventHandled(
            id=new_event_id(),
            source=self._source,
            time=report.handled_at,
            subject=report.source_event_id,
            data=report,
        )
        # Keyed by the input event, so the reports of one event (a redelivery's too) stay in order.
        await self._publisher.publish(
            event.model_dump_json(exclude_none=True).encode(),
            key=report.source_event_id.encode(),
            headers={"content-type": CLOUDEVENTS_JSON},
        )


class KafkaDeadLetterSink:
    """Publishes `notification.dead-letter` events."""

    def __init__(self, publisher: KafkaPublisher, *, on_published: Callable[[str], None] | None = None) -> None:
        self._publisher = publisher
        self._on_published = on_published  # called with the reason, e.g. to count dead letters

    async def __call__(self, dead_letter: NotificationDeadLettered) -> None:
        await publish_event(self._publisher, dead_letter)
        if self._on_published is not None:
            self._on_published(dead_letter.data.reason)
