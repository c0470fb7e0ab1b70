"""The invitations service: `faststream run notify_invitations.app:create_app --factory`.

It consumes meeting.created / updated / cancelled and sends invitations, updates and cancellations by email (with
an .ics file) and SMS, publishing a notification.status event for every outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from faststream.asgi import AsgiFastStream

from notify_invitations.handlers import SERVICE, build_router
from notify_invitations.runtime import Runtime
from notify_invitations.settings import InvitationsSettings
from notify_shared.delivery import Backoff
from notify_shared.kafka import EventTimeLimit
from notify_shared.kafka.keyed_concurrency import KeyedConcurrency
from notify_shared.kafka.service_app import build_service_app
from notify_shared.logs import configure_logging
from notify_shared.settings import load_settings


def create_app(
    settings: InvitationsSettings | None = None,
    *,
    delivery_backoff: Backoff | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AsgiFastStream:
    """Wire broker, handlers and resources. Settings come from the environment unless given (tests give them,
    and a clock set before the sample meetings)."""
    if settings is None:
        configure_logging()
        settings = load_settings(InvitationsSettings)
    parts = build_service_app(
        settings,
        service=SERVICE,
        title="notify: invitations",
        description="Meeting invitations, updates and cancellations for school–home collaboration.",
    )
    runtime = Runtime()
    events = KeyedConcurrency(limit=settings.event_concurrency)
    parts.broker.include_router(
        build_router(
            topics=settings.topics,
            group_id=settings.consumer_group,
            dead_letters=parts.dead_letters,
            runtime=runtime,
            events=events,
            max_record_bytes=settings.kafka_max_record_bytes,
            event_time=EventTimeLimit(settings.event_time_future_margin, clock),
        )
    )

    @parts.app.on_startup
    async def open_resources() -> None:
        await runtime.open(
            settings,
            status_sink=parts.status_sink,
            backoff=delivery_backoff,
            handled=parts.handled,
            clock=clock,
            metrics=parts.metrics,
            readiness=parts.readiness,
        )

    @parts.app.after_startup
    async def start_retries() -> None:
        # After the broker: a retry due at start-up publishes its status through it.
        await runtime.retries.start()

    @parts.app.on_shutdown
    async def finish_in_flight() -> None:
        # Before the broker stops: events in progress finish and their offsets are committed, then retries in
        # flight finish; all are recorded and report their status first.
        await events.close()
        await runtime.stop_retries()

    @parts.app.after_shutdown
    async def close_resources() -> None:
        await runtime.close()

    return parts.app
