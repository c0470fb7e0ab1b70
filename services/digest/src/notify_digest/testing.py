"""An in-process deployment of the digest service for tests: isolated topics, group and database, and a clock
that moves only when the test moves it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from notify_digest.app import create_app
from notify_digest.runtime import Runtime
from notify_digest.settings import DigestSettings
from notify_shared.delivery import Backoff
from notify_shared.testing.sinks import SmsSink, SmtpSink
from notify_shared.topics import Topics


class TestClock:
    """Stands still until the test moves it."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, start: datetime) -> None:
        self.now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def isolated_settings(
    *, kafka_bootstrap: str, work_dir: Path, smtp: SmtpSink, sms: SmsSink, database_url: str | None = None
) -> DigestSettings:
    """A fresh topic prefix and consumer group per test; polling slowed down so only the test runs the digests."""
    run = uuid.uuid4().hex[:8]
    return DigestSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{run}.",
        consumer_group=f"digest-{run}",
        database_url=database_url or f"sqlite+aiosqlite:///{work_dir / 'digest.db'}",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_security="none",
        sms_provider="webhook",
        sms_webhook_url=sms.url,
        outbox_dir=work_dir / "outbox",
        # The samples date later events (updates, messages, absences) days or weeks after SAMPLE_NOW, where the
        # tests' clocks start; a test of the margin itself sets its own.
        event_time_future_margin=timedelta(days=365),
        poll_interval=timedelta(hours=1),
    )


@dataclass
class Deployment:
    settings: DigestSettings
    clock: TestClock
    smtp: SmtpSink
    sms: SmsSink

    @property
    def topics(self) -> Topics:
        return self.settings.topics

    @asynccontextmanager
    async def running(self, instance_id: str = "replica-1") -> AsyncIterator[Runtime]:
        runtime = Runtime()
        settings = self.settings.model_copy(update={"instance_id": instance_id})
        app = create_app(
            settings, clock=self.clock, runtime=runtime, delivery_backoff=Backoff(base_seconds=0.01, max_seconds=0.05)
        )
        async with app:
            yield runtime
