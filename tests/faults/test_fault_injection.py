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

from notify_invitations.settings import InvitationsSettings
from notify_shared.testing.databases import fresh_postgres_database
from notify_shared.testing.faults import FaultySmtpSink, FaultyWebhookSink, OwnKafkaBroker
from notify_shared.testing.waiting import wait_until

from .fault_runs import EVENTS, GUARDIANS_PER_MEETING, Scenario, scenario

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

KILL_EVENTS = max(EVENTS, 300)
IN_FLIGHT = InvitationsSettings.model_fields["concurrency"].default
"""Notifications in progress at once per process (INVITATIONS_CONCURRENCY): what a kill -9 can catch mid-send."""
"""The kill -9 scenarios kill four times during a run of thousands of notifications, as the issue asks."""


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


NO_TAKEOVER_DURING_THE_OUTAGE = "120"
"""DELIVERY_LEASE while the broker is away: a live sender's claims may wait for a status publish that long, and
nothing crashes here, so no claim may pass on (the suite's 5 s lease would let one be sent again)."""


async def stop_the_broker_at_30_percent(run: Scenario, own_broker: OwnKafkaBroker) -> None:
    await run.start(run.service(DELIVERY_LEASE=NO_TAKEOVER_DURING_THE_OUTAGE))
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
            await run.check(resends_allowed=IN_FLIGHT, status_events_may_be_missing=True)
        finally:
            run.email_api.close()
