"""What every fault-injection scenario shares: a run of one service as real processes, its sinks, its database
and topics, and the verdict that every planned notification was delivered exactly once or ended with a reason.

A `Scenario` runs the invitations service by default; a subclass names another service's app and environment and
says which notifications its events plan (`expected_ids`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa

from notify_shared import samples
from notify_shared.contract import Channel, CloudEvent, MeetingCreated
from notify_shared.ledger import DeliveryKey, DeliveryStatus, create_engine, deliveries, delivery_retries
from notify_shared.ledger.keys import notification_id_for
from notify_shared.ledger.tables import unpublished_statuses
from notify_shared.testing.faults import FaultySmtpSink, FaultyWebhookSink, ServiceProcess
from notify_shared.testing.kafka import EventPublisher, TopicReader, create_all_topics
from notify_shared.testing.waiting import wait_until
from notify_shared.topics import Topics

EVENTS = int(os.environ.get("NOTIFY_FAULT_EVENTS", "120"))
GUARDIANS_PER_MEETING = 5
TEMPLATE = "meeting_invitation"
SETTLE_TIMEOUT = float(os.environ.get("NOTIFY_FAULT_SETTLE_SECONDS", "300"))
"""How long a run may take to settle after its last fault; shorter only to see a deliberate bug fail sooner."""
# The same personal data the suite-wide log check looks for (root conftest.py), in the services' own logs.
PERSONAL_DATA = re.compile(
    r"[A-Za-z0-9._%+-]+@example\.no|\+47 ?9\d{7}|(?<![\w-])9\d{7}(?![\w-])|Kari Nordmann|Ola Hansen|Leirskolen"
)


@dataclass
class Verdict:
    expected: int
    delivered_once: int = 0
    ended_with_reason: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    without_final_status_event: list[str] = field(default_factory=list)
    """Final in the ledger, but no `notification.status` event with that status on the topic."""


@dataclass
class Scenario:
    """One run: its sinks, its database, its topics, and the service processes it starts."""

    name: str
    kafka_bootstrap: str
    database_url: str
    work_dir: Path
    smtp: FaultySmtpSink
    sms: FaultyWebhookSink
    topics: Topics
    group: str
    events: list[MeetingCreated] = field(default_factory=list)
    second_sms: FaultyWebhookSink | None = None
    """A second SMS provider, when the scenario configures failover."""
    email_api: FaultyWebhookSink | None = None
    """An email API with idempotency keys, when the scenario sends email through it instead of SMTP."""
    processes: list[ServiceProcess] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)
    faults: list[str] = field(default_factory=list)
    _expected_count: tuple[int, int] = field(default=(-1, 0), init=False, repr=False)
    """(planned events, notifications they plan), so a progress poll does not hash every id again."""

    app = "notify_invitations.app:create_app"
    group_variable = "INVITATIONS_CONSUMER_GROUP"
    database_file = "invitations.db"

    def service_env(self) -> dict[str, str]:
        """What this service needs besides the environment every service shares."""
        # Runs at any hour: invitation SMS held for the end of quiet hours would count as missing.
        return {"INVITATIONS_QUIET_HOURS": "off"}

    def service(self, **extra_env: str) -> ServiceProcess:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "TOPIC_PREFIX": self.topics.prefix,
            self.group_variable: self.group,
            "DATABASE_URL": self.database_url,
            **self.email_env(),
            "SMS_PROVIDER": "webhook",
            "SMS_WEBHOOK_URL": self.sms.url,
            "SMS_TIMEOUT_SECONDS": "1",
            "OUTBOX_DIR": str(self.work_dir / "outbox"),
            # Fast retries and short leases, so a scenario takes seconds, not the production minutes.
            "DELIVERY_RETRY_BASE": "0.2",
            "DELIVERY_RETRY_MAX": "1",
            "DELIVERY_RETRY_POLL_INTERVAL": "1",
            "DELIVERY_LEASE": "5",
            "DELIVERY_ATTEMPTS": "60",
            "LOG_LEVEL": "DEBUG",
            **self.service_env(),
            **extra_env,
        }
        number = len(self.processes) + 1
        process = ServiceProcess(self.app, env, self.work_dir / f"service-{number}.log")
        self.processes.append(process)
        return process

    def email_env(self) -> dict[str, str]:
        if self.email_api is not None:
            return {"EMAIL_WEBHOOK_URL": self.email_api.url, "EMAIL_WEBHOOK_TIMEOUT_SECONDS": "2"}
        return {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp.port),
            "SMTP_SECURITY": "none",
            "SMTP_TIMEOUT_SECONDS": "2",
        }

    async def start(self, process: ServiceProcess) -> None:
        process.start()
        await wait_until(process.ready, within=60, what=f"{self.name}: the service to be ready")

    async def publish_all(self, events: int = EVENTS) -> None:
        now = datetime.now(UTC)
        for index in range(events):
            guardians = [
                samples.sample_guardian(
                    index * GUARDIANS_PER_MEETING + number + 1,
                    guardian_id=f"g-{index}-{number}",
                    channels=[Channel.EMAIL, Channel.SMS],
                )
                for number in range(GUARDIANS_PER_MEETING)
            ]
            meeting = samples.upcoming_meeting(f"m-{self.name}-{index}", now)
            self.events.append(samples.meeting_created(meeting=meeting, recipients=guardians, time=now))
        await self.publish(self.planned_events())

    def planned_events(self) -> Sequence[CloudEvent]:
        """The events the run publishes: meeting.created for the invitations."""
        return self.events

    async def publish(self, events: Sequence[CloudEvent]) -> None:
        """Publish in both CloudEvents modes, alternately."""
        async with EventPublisher(self.kafka_bootstrap, self.topics) as publisher:
            for index, event in enumerate(events):
                await publisher.publish(event, binary=index % 2 == 1)

    def expected_ids(self) -> set[str]:
        return {
            notification_id_for(
                DeliveryKey(event.data.school.id, event.source, event.id, guardian.guardian_id, channel.value, TEMPLATE)
            )
            for event in self.events
            for guardian in event.data.recipients
            for channel in guardian.channels
        }

    def accepted(self) -> Counter[str]:
        """Acceptances by notification id, both channels (the Message-ID's local part is the id)."""
        by_id: Counter[str] = Counter()
        for message_id, count in self.smtp.accepted.snapshot().items():
            by_id[message_id.strip("<>").split("@")[0]] += count
        for sink in self.webhook_sinks():
            by_id.update(sink.accepted.snapshot())
        return by_id

    def sms_sinks(self) -> list[FaultyWebhookSink]:
        return [self.sms] if self.second_sms is None else [self.sms, self.second_sms]

    def webhook_sinks(self) -> list[FaultyWebhookSink]:
        """Every sink that honours Idempotency-Key: the SMS providers, and the email API when there is one."""
        return self.sms_sinks() + ([self.email_api] if self.email_api is not None else [])

    def progress(self) -> float:
        accepted = self.smtp.accepted.total + sum(sink.accepted.total for sink in self.webhook_sinks())
        return accepted / max(1, self.expected_count())

    def expected_count(self) -> int:
        # Polled every 50 ms while the sinks run in this same process: hashing thousands of ids on each poll
        # (slower still under coverage) starves the sinks, so the count is kept until the plan changes.
        planned = len(self.planned_events())
        if self._expected_count[0] != planned:
            self._expected_count = (planned, len(self.expected_ids()))
        return self._expected_count[1]

    async def wait_progress(self, share: float) -> None:
        await wait_until(lambda: self.progress() >= share, within=180, what=f"{self.name}: {share:.0%} delivered")

    async def ledger_rows(self) -> dict[str, tuple[DeliveryStatus, str | None]]:
        engine = create_engine(self.database_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    sa.select(deliveries.c.notification_id, deliveries.c.status, deliveries.c.reason)
                )
                return {row.notification_id: (DeliveryStatus(row.status), row.reason) for row in rows}
        finally:
            await engine.dispose()

    async def retries_pending(self) -> int:
        return await self._rows_in(delivery_retries)

    async def kept_statuses(self) -> int:
        """Status events Kafka refused, waiting in the service's database to be published."""
        return await self._rows_in(unpublished_statuses)

    async def _rows_in(self, table: sa.Table) -> int:
        engine = create_engine(self.database_url)
        try:
            async with engine.connect() as connection:
                count = await connection.execute(sa.select(sa.func.count()).select_from(table))
                return int(count.scalar_one())
        finally:
            await engine.dispose()

    async def settle(self) -> None:
        expected = self.expected_ids()

        async def all_final() -> bool:
            rows = await self.ledger_rows()
            done = all(nid in rows and rows[nid][0].is_final for nid in expected)
            return done and await self.retries_pending() == 0 and await self.kept_statuses() == 0

        try:
            await wait_until(
                all_final, within=SETTLE_TIMEOUT, interval=0.5, what=f"{self.name}: every notification final"
            )
        except AssertionError:
            # Say what never settled: notifications lost (never planned, or planned and never ended) come first.
            verdict = await self.verdict()
            self.report(verdict)
            raise AssertionError(
                f"{self.name}: not settled after {SETTLE_TIMEOUT:.0f}s; {len(verdict.lost)} of {verdict.expected} "
                f"notifications lost or unfinished, e.g. {verdict.lost[:3]}"
            ) from None

    async def final_status_events(self) -> set[tuple[str, str]]:
        """(notification id, status) of every final status event on the run's status topic."""
        async with TopicReader(self.kafka_bootstrap, self.topics.notification_status) as reader:
            events = await reader.read_to_end()
        return {
            (event["data"]["notification_id"], event["data"]["status"])
            for event in events
            if DeliveryStatus(event["data"]["status"]).is_final
        }

    async def verdict(self) -> Verdict:
        expected = self.expected_ids()
        rows = await self.ledger_rows()
        accepted = self.accepted()
        published = await self.final_status_events()
        verdict = Verdict(expected=len(expected))
        verdict.without_final_status_event = sorted(
            nid for nid in expected if nid in rows and (nid, rows[nid][0].value) not in published
        )
        verdict.unexpected = sorted(set(accepted) - expected)
        for nid in sorted(expected):
            status, reason = rows.get(nid, (None, None))
            count = accepted.get(nid, 0)
            if count > 1:
                verdict.duplicated.append(nid)
            if status is DeliveryStatus.SENT and count >= 1:
                verdict.delivered_once += count == 1
            elif status in (DeliveryStatus.FAILED, DeliveryStatus.EXPIRED) and reason and count == 0:
                verdict.ended_with_reason[f"{status.value}:{reason}"] += 1
            else:
                verdict.lost.append(nid)
        return verdict

    def personal_data_in_logs(self) -> list[str]:
        return [
            f"{process.log_path.name}: {line[:200]}"
            for process in self.processes
            for line in process.log_text().splitlines()
            if PERSONAL_DATA.search(line)
        ]

    def report(self, verdict: Verdict) -> None:
        figures = {
            "scenario": self.name,
            "faults": self.faults,
            "events": len(self.planned_events()),
            "notifications": verdict.expected,
            "delivered_exactly_once": verdict.delivered_once,
            "ended_with_reason": dict(verdict.ended_with_reason),
            "lost": len(verdict.lost),
            "duplicated": len(verdict.duplicated),
            "final_status_events_missing": len(verdict.without_final_status_event),
            "email_transport": "smtp" if self.email_api is None else "api",
            "sink_acceptances": {
                "smtp": self.smtp.accepted.total,
                "email_api": self.email_api.accepted.total if self.email_api is not None else 0,
                "sms": self.sms.accepted.total,
            },
            "sms_resends_absorbed_by_idempotency_key": sum(sink.replays for sink in self.sms_sinks()),
            "email_resends_absorbed_by_idempotency_key": self.email_api.replays if self.email_api is not None else 0,
            "sms_by_provider": [sink.accepted.total for sink in self.sms_sinks()],
            "sms_faults_injected": dict(self.sms.failures),
            "service_processes": len(self.processes),
            "seconds": round(time.monotonic() - self.started_at, 1),
        }
        print(f"\n[fault-injection] {json.dumps(figures)}")
        path = os.environ.get("NOTIFY_FAULT_REPORT")
        if path:
            with Path(path).open("a", encoding="utf-8") as report:
                report.write(json.dumps(figures) + "\n")

    async def check(
        self, *, resends_allowed: int = 0, smtp_duplicates_allowed: int = 0, status_events_may_be_missing: bool = False
    ) -> None:
        """Every assertion of the reliability promise, after the run has settled.

        Both allowances are for kill -9 only. `resends_allowed` bounds the messages sent again after a restart: a
        provider accepted them in the milliseconds before the ledger recorded it. A resend through an SMS or email
        API repeats its Idempotency-Key, so the provider drops it and the parent gets one message. An email over
        SMTP repeats only its Message-ID, which SMTP cannot drop: `smtp_duplicates_allowed` of those may reach a
        parent twice. A kill -9 between recording an outcome and publishing its status event loses that event
        (`status_events_may_be_missing`); every other fault must leave each notification's final status on the
        status topic. See docs/reliability.md.
        """
        verdict = await self.verdict()
        self.report(verdict)
        assert verdict.lost == [], f"{len(verdict.lost)} notifications lost"
        if not status_events_may_be_missing:
            assert verdict.without_final_status_event == [], "final statuses missing on notification.status"
        replays = sum(sink.replays for sink in self.webhook_sinks())
        assert len(verdict.duplicated) + replays <= resends_allowed, (
            f"{len(verdict.duplicated)} accepted more than once, {replays} sent again to an API"
        )
        assert len(verdict.duplicated) <= smtp_duplicates_allowed, f"{len(verdict.duplicated)} reached a parent twice"
        resent_emails = {key.strip("<>").split("@")[0] for key, n in self.smtp.accepted.snapshot().items() if n > 1}
        assert set(verdict.duplicated) <= resent_emails, "a message with an Idempotency-Key reached a parent twice"
        assert verdict.unexpected == [], "the sinks accepted messages nobody planned"
        settled = verdict.delivered_once + len(verdict.duplicated) + sum(verdict.ended_with_reason.values())
        assert settled == verdict.expected
        assert self.personal_data_in_logs() == []


ScenarioT = TypeVar("ScenarioT", bound=Scenario)


@asynccontextmanager
async def scenario_of(
    kind: type[ScenarioT],
    name: str,
    kafka_bootstrap: str,
    work_dir: Path,
    sinks: tuple[FaultySmtpSink, FaultyWebhookSink],
    *,
    database_url: str | None = None,
) -> AsyncIterator[ScenarioT]:
    """A run of `kind`'s service on topics, a consumer group and (unless given) a SQLite database of its own."""
    run = uuid.uuid4().hex[:8]
    topics = Topics(f"f{run}.")
    await create_all_topics(kafka_bootstrap, topics)
    await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
    url = database_url or f"sqlite+aiosqlite:///{work_dir / kind.database_file}"
    state = kind(name, kafka_bootstrap, url, work_dir, *sinks, topics=topics, group=f"faults-{run}")
    try:
        yield state
    finally:
        for process in state.processes:
            if process.running:
                process.kill()


def scenario(
    name: str,
    kafka_bootstrap: str,
    work_dir: Path,
    sinks: tuple[FaultySmtpSink, FaultyWebhookSink],
    database_url: str | None = None,
) -> AbstractAsyncContextManager[Scenario]:
    """A run of the invitations service."""
    return scenario_of(Scenario, name, kafka_bootstrap, work_dir, sinks, database_url=database_url)
