"""The reminders service: `faststream run notify_reminders.app:create_app --factory`.

It keeps a durable schedule of reminders from meeting.created / updated / cancelled, and sends each reminder
once, at its time, in the school's time zone and outside quiet hours.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from faststream.asgi import AsgiFastStream

from notify_reminders.handlers import SERVICE, build_router
from notify_reminders.runtime import Runtime
from notify_reminders.settings import RemindersSettings
from notify_reminders.store import OPEN_STATES
from notify_shared.delivery import Backoff
from notify_shared.kafka import EventTimeLimit
from notify_shared.kafka.service_app import build_service_app
from notify_shared.logs import configure_logging
from notify_shared.settings import load_settings


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: RemindersSettings | None = None,
    *,
    clock: Callable[[], datetime] = _wall_clock,
    delivery_backoff: Backoff | None = None,
    runtime: Runtime | None = None,
) -> AsgiFastStream:
    """Wire broker, handler, schedule and alarm. Tests pass settings, a clock and a runtime to look into."""
    if settings is None:
        configure_logging()
        settings = load_settings(RemindersSettings)
    parts = build_service_app(
        settings,
        service=SERVICE,
        title="notify: reminders",
        description="Reminders before every meeting, durable and exactly once, never at night.",
    )
    runtime = runtime or Runtime()
    parts.broker.include_router(
        build_router(
            topics=settings.topics,
            group_id=settings.consumer_group,
            dead_letters=parts.dead_letters,
            runtime=runtime,
            max_record_bytes=settings.kafka_max_record_bytes,
            event_time=EventTimeLimit(settings.event_time_future_margin, clock),
        )
    )

    @parts.app.on_startup
    async def open_resources() -> None:
        await runtime.open(
            settings,
            status_sink=parts.status_sink,
            clock=clock,
            handled=parts.handled,
            backoff=delivery_backoff,
            metrics=parts.metrics,
            readiness=parts.readiness,
        )

    pending = parts.metrics.gauge("notify_reminders_pending", "Reminders scheduled and not yet sent or skipped.")

    overdue = parts.metrics.gauge(
        "notify_reminders_overdue_seconds",
        "How long the oldest reminder that is due has been waiting to be sent (0 when none is due).",
    )

    @parts.metrics.on_scrape
    async def count_pending() -> None:
        counts = await runtime.store.count_by_state()
        pending.labels(SERVICE).set(sum(counts.get(state, 0) for state in OPEN_STATES))
        oldest = await runtime.store.oldest_unfired_due()
        waited = 0.0 if oldest is None else (clock().astimezone(UTC) - oldest).total_seconds()
        overdue.labels(SERVICE).set(max(0.0, waited))

    @parts.app.after_startup
    async def start_alarm() -> None:
        # After the broker: a reminder due at start-up publishes its status through it.
        await runtime.alarm.start()

    @parts.app.after_startup
    async def start_retries() -> None:
        # After the broker: a retry due at start-up publishes its status through it.
        await runtime.retries.start()

    @parts.app.on_shutdown
    async def stop_retries() -> None:
        # Before the broker stops: retries in flight finish, are recorded and report their status first.
        await runtime.stop_retries()

    @parts.app.after_shutdown
    async def close_resources() -> None:
        await runtime.close()

    return parts.app
