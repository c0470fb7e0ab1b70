"""The invitations service: `faststream run notify_invitations.app:create_app --factory`.

It consumes meeting.created / updated / cancelled and sends invitations, updates and cancellations by email (with
an .ics file) and SMS, publishing a notification.status event for every outcome.
"""

from __future__ import annotations

from faststream import FastStream
from faststream.specification import AsyncAPI

from notify_invitations.handlers import SERVICE, build_router
from notify_invitations.runtime import Runtime
from notify_invitations.settings import InvitationsSettings
from notify_shared.contract import NotificationDeadLettered, NotificationStatus
from notify_shared.delivery import Backoff
from notify_shared.kafka import KafkaDeadLetterSink, KafkaStatusSink, build_broker
from notify_shared.logs import configure_logging
from notify_shared.settings import load_settings


def create_app(settings: InvitationsSettings | None = None, *, delivery_backoff: Backoff | None = None) -> FastStream:
    """Wire broker, handlers and resources. Settings come from the environment unless given (tests give them)."""
    if settings is None:
        configure_logging()
        settings = load_settings(InvitationsSettings)
    topics = settings.topics
    broker = build_broker(settings, client_id=f"notify-{SERVICE}")
    status_publisher = broker.publisher(
        topics.notification_status,
        schema=NotificationStatus,
        title=f"{SERVICE}:notification.status",
        description="One event per step of every notification: ids, channel, template, language and status.",
    )
    dead_letter_publisher = broker.publisher(
        topics.dead_letter,
        schema=NotificationDeadLettered,
        title=f"{SERVICE}:notification.dead-letter",
        description="Records that could not be used, with the reason and the original bytes and headers.",
    )
    runtime = Runtime()
    broker.include_router(
        build_router(
            topics=topics,
            group_id=settings.consumer_group,
            dead_letters=KafkaDeadLetterSink(dead_letter_publisher),
            runtime=runtime,
        )
    )
    app = FastStream(
        broker,
        specification=AsyncAPI(
            title="notify: invitations",
            version="0.1.0",
            description="Meeting invitations, updates and cancellations for school–home collaboration.",
        ),
    )

    @app.on_startup
    async def open_resources() -> None:
        await runtime.open(
            settings, status_sink=KafkaStatusSink(status_publisher, service=SERVICE), backoff=delivery_backoff
        )

    @app.after_shutdown
    async def close_resources() -> None:
        await runtime.close()

    return app
