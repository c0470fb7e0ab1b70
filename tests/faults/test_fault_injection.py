"""Fault injection: the invitations service, run as real processes against the real broker, while things break.

Each scenario publishes a few hundred meeting.created events (thousands of notifications: every guardian wants
email and SMS), breaks something on purpose mid-run, waits until every notification has reached a final status,
and then checks, from what the sinks actually accepted and from the delivery ledger, that every notification
was delivered exactly once, or ended `failed` / `expired` with a reason. Nothing lost, nothing duplicated.

Set NOTIFY_FAULT_REPORT to a file path to get one JSON line of figures per scenario (docs/reliability.md was
written from them), and NOTIFY_FAULT_EVENTS to change the number of events (default 120, so 1,200
notifications per scenario; the kill -9 scenarios publish at least 300 events, 3,000 notifications).
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

<<<<<<< HEAD
=======
from notify_invitations.settings import InvitationsSettings
from notify_shared import samples
from notify_shared.contract import Channel, MeetingCreated
from notify_shared.ledger import DeliveryKey, DeliveryStatus, create_engine, deliveries, delivery_retries
from notify_shared.ledger.keys import notification_id_for
from notify_shared.ledger.tables import unpublished_statuses
>>>>>>> ee4cd34 (Fault suite: the kill -9 scenarios allow as many resends per kill as the service has notifications in progress (INVITATIONS_CONCURRENCY, now 64), read from its settings instead of a fixed 16)
from notify_shared.testing.databases import fresh_postgres_database
from notify_shared.testing.faults import FaultySmtpSink, FaultyWebhookSink, OwnKafkaBroker
from notify_shared.testing.waiting import wait_until

from .fault_runs import EVENTS, GUARDIANS_PER_MEETING, Scenario, scenario

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

KILL_EVENTS = max(EVENTS, 300)
"""The kill -9 scenarios kill four times during a run of thousands of notifications, as the issue asks."""
<<<<<<< HEAD
=======
GUARDIANS_PER_MEETING = 5
IN_FLIGHT = InvitationsSettings.model_fields["concurrency"].default
"""Notifications in progress at once per process (INVITATIONS_CONCURRENCY): what a kill -9 can catch mid-send."""
TEMPLATE = "meeting_invitation"
SETTLE_TIMEOUT = 300.0
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

    def service(self, **extra_env: str) -> ServiceProcess:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "TOPIC_PREFIX": self.topics.prefix,
            "INVITATIONS_CONSUMER_GROUP": self.group,
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
            **extra_env,
        }
        number = len(self.processes) + 1
        process = ServiceProcess("notify_invitations.app:create_app", env, self.work_dir / f"service-{number}.log")
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
        async with EventPublisher(self.kafka_bootstrap, self.topics) as publisher:
            for index, event in enumerate(self.events):
                await publisher.publish(event, binary=index % 2 == 1)

    def expected_ids(self) -> set[str]:
        return {
            notification_id_for(
                DeliveryKey(event.data.school.id, event.id, guardian.guardian_id, channel.value, TEMPLATE)
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
        return accepted / max(1, len(self.expected_ids()))

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

        await wait_until(all_final, within=SETTLE_TIMEOUT, interval=0.5, what=f"{self.name}: every notification final")

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
            "events": len(self.events),
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


@pytest.fixture
def sinks() -> Iterator[tuple[FaultySmtpSink, FaultyWebhookSink]]:
    smtp, sms = FaultySmtpSink(), FaultyWebhookSink()
    smtp.up()
    try:
        yield smtp, sms
    finally:
        smtp.down()
        sms.close()


@asynccontextmanager
async def scenario(
    name: str,
    kafka_bootstrap: str,
    work_dir: Path,
    sinks: tuple[FaultySmtpSink, FaultyWebhookSink],
    database_url: str | None = None,
) -> AsyncIterator[Scenario]:
    run = uuid.uuid4().hex[:8]
    topics = Topics(f"f{run}.")
    await create_all_topics(kafka_bootstrap, topics)
    await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
    url = database_url or f"sqlite+aiosqlite:///{work_dir / 'invitations.db'}"
    state = Scenario(name, kafka_bootstrap, url, work_dir, *sinks, topics=topics, group=f"faults-{run}")
    try:
        yield state
    finally:
        for process in state.processes:
            if process.running:
                process.kill()
>>>>>>> ee4cd34 (Fault suite: the kill -9 scenarios allow as many resends per kill as the service has notifications in progress (INVITATIONS_CONCURRENCY, now 64), read from its settings instead of a fixed 16)


async def kill_repeatedly(run: Scenario) -> int:
    """kill -9 the service at 10, 30, 50 and 70 % delivered, restarting it each time; returns the kills."""
    service = run.service()
    await run.start(service)
    await run.publish_all(KILL_EVENTS)
    for share in (0.1, 0.3, 0.5, 0.7):
        await run.wait_progress(share)
        service.kill()
        run.faults.append(f"kill -9 at {share:.0%} delivered")
        await run.start(service)
    await run.settle()
    return service.kills


async def test_kill_minus_9_repeatedly_with_email_through_an_api_delivers_everything_exactly_once(
    kafka_bootstrap: str, tmp_path: Path, sinks: tuple[FaultySmtpSink, FaultyWebhookSink]
) -> None:
    async with scenario("kill-9-email-api", kafka_bootstrap, tmp_path, sinks) as run:
        run.email_api = FaultyWebhookSink(path="/email")
        try:
            kills = await kill_repeatedly(run)
            # The sends in flight at each kill (IN_FLIGHT per process) are sent again; every one of them is dropped
            # by its Idempotency-Key, so no parent gets anything twice.
            await run.check(resends_allowed=IN_FLIGHT * kills, status_events_may_be_missing=True)
            assert run.smtp.accepted.total == 0
        finally:
            run.email_api.close()


async def test_kill_minus_9_repeatedly_with_email_over_smtp_sends_at_most_the_in_flight_emails_twice(
    kafka_bootstrap: str, tmp_path: Path, sinks: tuple[FaultySmtpSink, FaultyWebhookSink]
) -> None:
    async with scenario("kill-9", kafka_bootstrap, tmp_path, sinks) as run:
        kills = await kill_repeatedly(run)
        # SMTP has no idempotency key: of the sends in flight at each kill, the emails reach their parent twice.
        await run.check(
            resends_allowed=IN_FLIGHT * kills,
            smtp_duplicates_allowed=IN_FLIGHT * kills,
            status_events_may_be_missing=True,
        )


async def test_the_smtp_server_down_for_a_while(
    kafka_bootstrap: str, tmp_path: Path, sinks: tuple[FaultySmtpSink, FaultyWebhookSink]
) -> None:
    async with scenario("smtp-down", kafka_bootstrap, tmp_path, sinks) as run:
        await run.start(run.service())
        await run.publish_all()
        await run.wait_progress(0.2)
        run.smtp.down()

        async def emails_waiting_for_retry() -> bool:
            return await run.retries_pending() >= 100

        await wait_until(emails_waiting_for_retry, within=120, what="emails queued for retry while SMTP is down")
        run.faults.append(f"SMTP down from 20% delivered until {await run.retries_pending()} emails were queued")
        run.smtp.up()
        await run.settle()
        await run.check()


async def test_the_sms_provider_failing_thirty_percent_with_500_429_and_timeouts(
    kafka_bootstrap: str, tmp_path: Path, sinks: tuple[FaultySmtpSink, FaultyWebhookSink]
) -> None:
    async with scenario("sms-flaky", kafka_bootstrap, tmp_path, sinks) as run:
        run.sms.failure_rate = 0.3
        run.faults.append("30% of SMS requests fail: 500, 429 (Retry-After: 0) or no answer within the 1 s timeout")
        await run.start(run.service())
        await run.publish_all()
        await run.settle()
        await run.check()
        assert sum(run.sms.failures.values()) > 0.2 * EVENTS * GUARDIANS_PER_MEETING


async def test_the_first_sms_provider_down_traffic_moves_to_the_second(
    kafka_bootstrap: str, tmp_path: Path, sinks: tuple[FaultySmtpSink, FaultyWebhookSink]
) -> None:
    async with scenario("sms-failover", kafka_bootstrap, tmp_path, sinks) as run:
        run.sms.failure_rate, run.sms.fault_kinds = 1.0, ("503",)
        run.second_sms = second = FaultyWebhookSink()
        run.faults.append("the first SMS provider answers every request with 503; a second one is configured")
        try:
            await run.start(
                run.service(
                    SMS_FALLBACK_PROVIDER="webhook", SMS_FALLBACK_WEBHOOK_URL=second.url, SMS_BREAKER_FAILURES="5"
                )
            )
            await run.publish_all()
            await run.settle()
            await run.check()
            assert run.sms.accepted.total == 0
            assert second.accepted.total == EVENTS * GUARDIANS_PER_MEETING
            # The circuit opened after 5 failures; after that the first provider was left alone (it gets one trial
            # per 30 s cooldown).
            assert sum(run.sms.failures.values()) < 20
        finally:
            second.close()


async def stop_the_broker_at_30_percent(run: Scenario, own_broker: OwnKafkaBroker) -> None:
    await run.start(run.service())
    await run.publish_all()
    await run.wait_progress(0.3)
    await asyncio.to_thread(own_broker.command, "stop")


async def test_a_kafka_broker_restart_mid_run(
    own_broker: OwnKafkaBroker, tmp_path: Path, sinks: tuple[FaultySmtpSink, FaultyWebhookSink]
) -> None:
    async with scenario("broker-restart", own_broker.bootstrap, tmp_path / "run", sinks) as run:
        await stop_the_broker_at_30_percent(run, own_broker)
        run.faults.append("broker stopped (SIGTERM) at 30% delivered, then started again on the same port and data")
        await asyncio.to_thread(own_broker.command, "start")
        await run.settle()
        await run.check()


async def test_the_broker_away_longer_than_the_producer_waits_keeps_status_events_until_it_is_back(
    own_broker: OwnKafkaBroker, tmp_path: Path, sinks: tuple[FaultySmtpSink, FaultyWebhookSink]
) -> None:
    async with scenario("broker-away", own_broker.bootstrap, tmp_path / "run", sinks) as run:
        await stop_the_broker_at_30_percent(run, own_broker)

        async def some_kept() -> bool:
            return await run.kept_statuses() > 0

        # The sends in flight finish, but their status events wait for the producer's timeout and are refused.
        await wait_until(some_kept, within=180, interval=1, what="status events kept while Kafka is away")
        kept = await run.kept_statuses()
        run.faults.append(f"broker stopped at 30% delivered until {kept} status events were refused and kept")
        await asyncio.to_thread(own_broker.command, "start")
        await run.settle()
        await run.check()


@pytest.mark.postgres
async def test_two_replicas_with_a_rebalance_mid_run(
    kafka_bootstrap: str,
    postgres_url: str,
    tmp_path: Path,
    sinks: tuple[FaultySmtpSink, FaultyWebhookSink],
) -> None:
    async with (
        fresh_postgres_database(postgres_url) as database_url,
        scenario("replicas", kafka_bootstrap, tmp_path, sinks, database_url) as run,
    ):
        first, second = run.service(), run.service()
        await run.start(first)
        await run.publish_all()
        await run.wait_progress(0.2)
        await run.start(second)
        run.faults.append("second replica joins at 20% delivered (rebalance)")
        await run.wait_progress(0.5)
        # Graceful: what the first replica has in flight finishes and is recorded before it leaves. (uvicorn,
        # which serves the HTTP port, re-raises SIGTERM after the shutdown, hence -15 rather than 0.)
        assert first.terminate() in (0, -signal.SIGTERM)
        assert "FastStream app shut down gracefully." in first.log_text()
        run.faults.append("first replica stopped with SIGTERM at 50% delivered (rebalance)")
        await run.settle()
        await run.check()
        assert "Traceback" not in first.log_text()


async def test_after_kill_minus_9_the_dead_senders_claims_are_taken_over_in_seconds_not_after_the_lease(
    kafka_bootstrap: str, tmp_path: Path, sinks: tuple[FaultySmtpSink, FaultyWebhookSink]
) -> None:
    # The lease is an hour here: a run that waited for it could not settle within the test's bounds, so settling
    # at all shows the claims passed on by the dead sender's heartbeat (DELIVERY_SENDER_TIMEOUT) alone.
    async with scenario("kill-9-recovery", kafka_bootstrap, tmp_path, sinks) as run:
        run.email_api = FaultyWebhookSink(path="/email")
        try:
            service = run.service(DELIVERY_LEASE="3600", DELIVERY_SENDER_TIMEOUT="10")
            await run.start(service)
            await run.publish_all()
            await run.wait_progress(0.3)
            service.kill()
            killed_at = time.monotonic()
            run.faults.append("kill -9 at 30% delivered, lease 3600 s, sender timeout 10 s")
            await run.start(service)
            await run.settle()
            recovery_seconds = time.monotonic() - killed_at
            run.faults.append(f"every notification final {recovery_seconds:.1f} s after the kill")
            await run.check(resends_allowed=16, status_events_may_be_missing=True)
        finally:
            run.email_api.close()
