"""The digest service: `faststream run notify_digest.app:create_app --factory`.

It turns message.posted and absence.noted into instant notices where waiting would be wrong (urgent messages,
absences, guardians who chose `instant`) and into daily or weekly digests ("fredagsmail") otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from faststream.asgi import AsgiFastStream

from notify_digest.handlers import SERVICE, build_router
from notify_digest.runtime import Runtime
from notify_digest.settings import DigestSettings
from notify_shared.delivery import Backoff
from notify_shared.kafka import EventTimeLimit
from notify_shared.kafka.service_app import build_service_app
from notify_shared.logs import configure_logging
from notify_shared.settings import load_settings


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: DigestSettings | None = None,
    *,
    clock: Callable[[], datetime] = _wall_clock,
    delivery_backoff: Backoff | None = None,
    runtime: Runtime | None = None,
) -> AsgiFastStream:
    """Wire broker, handler, store and alarm. Tests pass settings, a clock and a runtime to look into."""
    if settings is None:
        configure_logging()
        settings = load_settings(DigestSettings)
    parts = build_service_app(
        settings,
        service=SERVICE,
        title="notify: digest",
        description="Instant notices where waiting would be wrong; daily and weekly digests otherwise.",
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

    pending = parts.metrics.gauge("notify_digest_items_pending", "Messages and absences waiting for a digest.")

    @parts.metrics.on_scrape
    async def count_pending() -> None:
        counts = await runtime.store.counts()
        pending.labels(SERVICE).set(counts.get("items_waiting", 0))

    @parts.app.after_startup
    async def start_alarm() -> None:
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
