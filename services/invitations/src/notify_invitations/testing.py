"""An in-process deployment of the service for tests: isolated topics, consumer group and database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from faststream.asgi import AsgiFastStream

from notify_invitations.app import create_app
from notify_invitations.settings import InvitationsSettings
from notify_shared.delivery import Backoff
from notify_shared.samples import SAMPLE_NOW
from notify_shared.testing.clocks import RunningClock
from notify_shared.testing.sinks import SmsSink, SmtpSink
from notify_shared.topics import Topics


def isolated_settings(
    *, kafka_bootstrap: str, work_dir: Path, smtp: SmtpSink, sms: SmsSink, database_url: str | None = None
) -> InvitationsSettings:
    """Settings for one test: a fresh topic prefix and consumer group, so tests never see each other's events."""
    run = uuid.uuid4().hex[:8]
    return InvitationsSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{run}.",
        consumer_group=f"invitations-{run}",
        database_url=database_url or f"sqlite+aiosqlite:///{work_dir / 'invitations.db'}",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_security="none",
        sms_provider="webhook",
        sms_webhook_url=sms.url,
        outbox_dir=work_dir / "outbox",
        # The samples date later events (updates, messages, absences) days or weeks after SAMPLE_NOW, where the
        # tests' clocks start; a test of the margin itself sets its own.
        event_time_future_margin=timedelta(days=365),
        organizer_email="no-reply@bjolsen.example.no",
    )


@dataclass
class Deployment:
    """The service's settings and the sinks it delivers to."""

    settings: InvitationsSettings
    smtp: SmtpSink
    sms: SmsSink
    clock: Callable[[], datetime] = field(default_factory=lambda: RunningClock(SAMPLE_NOW))
    """Runs from the moment the samples were written, before the sample meeting starts."""

    @property
    def topics(self) -> Topics:
        return self.settings.topics

    @asynccontextmanager
    async def running(self) -> AsyncIterator[AsgiFastStream]:
        """The service, started (handlers subscribed) until the block ends; retries back off in milliseconds."""
        app = create_app(self.settings, delivery_backoff=Backoff(base_seconds=0.01, max_seconds=0.05), clock=self.clock)
        async with app:
            yield app
