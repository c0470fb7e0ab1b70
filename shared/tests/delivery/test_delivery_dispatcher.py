"""The delivery core: claim, screen, render, send, retry, expire, fall back, record, report — with a real ledger."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from notify_shared import samples
from notify_shared.channels import (
    DeliveryReceipt,
    OutgoingEmail,
    OutgoingSms,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from notify_shared.contract import Channel, Recipient
from notify_shared.delivery import (
    Backoff,
    CollectingStatusSink,
    DeliveryJob,
    DeliveryOutcome,
    Dispatcher,
    NotificationInFlightError,
    PlannedNotification,
    RetryWorker,
    SourceEventRef,
)
from notify_shared.ledger import DeliveryKey, DeliveryLedger, DeliveryStatus
from notify_shared.ledger.liveness import SenderLiveness
from notify_shared.rendering import render_notification
from notify_shared.testing.clocks import SettableClock
from notify_shared.testing.waiting import wait_until


@dataclass
class ScriptedChannel:
    """A channel that fails as scripted, then accepts; it keeps what it accepted."""

    name: str = "scripted"
    failures: list[Exception] = field(default_factory=list)
    emails: list[OutgoingEmail] = field(default_factory=list)
    sms: list[OutgoingSms] = field(default_factory=list)
    tries: int = 0
    sms_rejected: bool = False
    """Every SMS fails permanently (e.g. the provider rejects the numbers), whatever `failures` says."""

    def _maybe_fail(self) -> None:
        self.tries += 1
        if self.failures:
            raise self.failures.pop(0)

    async def send_email(self, message: OutgoingEmail) -> DeliveryReceipt:
        self._maybe_fail()
        self.emails.append(message)
        return DeliveryReceipt(provider=self.name, provider_message_id=f"m-{len(self.emails)}")

    async def send_sms(self, message: OutgoingSms) -> DeliveryReceipt:
        if self.sms_rejected:
            self.tries += 1
            raise PermanentDeliveryError("http_400")
        self._maybe_fail()
        self.sms.append(message)
        return DeliveryReceipt(provider=self.name, provider_message_id=f"s-{len(self.sms)}")

    async def aclose(self) -> None:
        return None


def _clock() -> SettableClock:
    return SettableClock(datetime(2026, 11, 20, 8, 0, tzinfo=UTC))


@dataclass
class Harness:
    ledger: DeliveryLedger
    channel: ScriptedChannel
    statuses: CollectingStatusSink
    clock: SettableClock

    def dispatcher(self) -> Dispatcher:
        return Dispatcher(
            ledger=self.ledger,
            render=render_notification,
            email=self.channel,
            sms=self.channel,
            status_sink=self.statuses,
            email_sender="Bjølsen skole <no-reply@bjolsen.example.no>",
            max_attempts=3,
            backoff=Backoff(base_seconds=1, max_seconds=8),
            clock=self.clock,
        )


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    clock = _clock()
    ledger = await DeliveryLedger.connect(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}", clock=clock)
    try:
        yield Harness(ledger, ScriptedChannel(), CollectingStatusSink(), clock)
    finally:
        await ledger.aclose()


def _plan(guardian: Recipient, channel: Channel, event_id: str = "evt-1") -> PlannedNotification:
    event = samples.meeting_created(event_id=event_id, recipients=[guardian])
    return PlannedNotification(
        source=SourceEventRef(source=event.source, id=event.id, type=event.type),
        school=event.data.school,
        guardian=guardian,
        channel=channel,
        template="meeting_invitation",
        context={"school": event.data.school, "meeting": event.data.meeting, "guardian": guardian},
    )


async def test_an_eligible_guardian_gets_email_and_sms_and_each_is_recorded_and_reported(harness: Harness) -> None:
    guardian = samples.sample_guardian(1)
    outcomes = await harness.dispatcher().dispatch([_plan(guardian, Channel.EMAIL), _plan(guardian, Channel.SMS)])

    assert [outcome.status for outcome in outcomes] == [DeliveryStatus.SENT, DeliveryStatus.SENT]
    (email,) = harness.channel.emails
    assert email.to == "guardian1@example.no"
    assert "Foreldremøte 7B" in email.subject
    (sms,) = harness.channel.sms
    assert (sms.to_e164, sms.sender_id) == ("+4790000001", "Bjolsen")
    reports = {report.channel: report for report in harness.statuses.reports}
    assert {(r.channel, r.status, r.language) for r in reports.values()} == {
        (Channel.EMAIL, DeliveryStatus.SENT, "nb"),
        (Channel.SMS, DeliveryStatus.SENT, "nb"),
    }
    assert reports[Channel.SMS].sms_segments is not None
    record = await harness.ledger.get(
        DeliveryKey("nor-0301-bjolsen", samples.SOURCE, "evt-1", "g-1001", "sms", "meeting_invitation")
    )
    assert record is not None
    assert record.status is DeliveryStatus.SENT


async def test_a_redelivered_event_sends_nothing_and_reports_nothing_new(harness: Harness) -> None:
    plans = [_plan(samples.sample_guardian(1), Channel.EMAIL)]
    await harness.dispatcher().dispatch(plans)
    again = await harness.dispatcher().dispatch(plans)

    assert len(harness.channel.emails) == 1
    assert again[0].already_recorded
    assert len(harness.statuses.reports) == 1


@pytest.mark.parametrize(
    ("overrides", "status", "reason"),
    [
        ({"has_parental_responsibility": False}, DeliveryStatus.SUPPRESSED, "no_parental_responsibility"),
        ({"blocked": True}, DeliveryStatus.SUPPRESSED, "blocked_by_school"),
        ({"phone": "912 34"}, DeliveryStatus.FAILED, "invalid_phone"),
        ({"phone": None}, DeliveryStatus.FAILED, "missing_phone"),
        ({"phone": "22 12 34 56"}, DeliveryStatus.FAILED, "not_mobile"),
    ],
)
async def test_a_guardian_who_must_not_or_cannot_be_reached_gets_nothing_and_a_clear_status(
    harness: Harness, overrides: dict[str, object], status: DeliveryStatus, reason: str
) -> None:
    # SMS only: with email allowed too, an unusable number would hand the notification to email (tested below).
    guardian = samples.sample_guardian(1, channels=[Channel.SMS], **overrides)
    (outcome,) = await harness.dispatcher().dispatch([_plan(guardian, Channel.SMS)])

    assert (outcome.status, outcome.reason) == (status, reason)
    assert harness.channel.tries == 0
    assert [(r.status, r.reason) for r in harness.statuses.reports] == [(status, reason)]


async def _run_retries(harness: Harness, dispatcher: Dispatcher, *, after: timedelta) -> int:
    """Let `after` pass on the clock, then let a retry worker send whatever has fallen due."""
    harness.clock.now += after
    return await RetryWorker(dispatcher, owner="test", clock=harness.clock).run_due()


async def test_a_transient_failure_goes_to_the_retry_queue_and_is_sent_by_the_retry_worker(harness: Harness) -> None:
    harness.channel.failures = [TransientDeliveryError("smtp_451"), TransientDeliveryError("smtp_421")]
    dispatcher = harness.dispatcher()
    plan = _plan(samples.sample_guardian(1), Channel.EMAIL)
    (outcome,) = await dispatcher.dispatch([plan])

    # The event is done with: the notification waits in the durable queue, not in the handler.
    assert (outcome.status, outcome.reason) == (DeliveryStatus.QUEUED, "retry_scheduled:smtp_451")
    assert await dispatcher.retry_queue.pending() == 1
    record = await harness.ledger.get(outcome.notification_id)
    assert record is not None
    assert record.status is DeliveryStatus.QUEUED
    # Kafka redelivers the event: the queued notification is neither sent nor reported again.
    (again,) = await dispatcher.dispatch([plan])
    assert (again.status, again.already_recorded) == (DeliveryStatus.QUEUED, True)
    assert harness.channel.tries == 1

    # Full jitter: the first retry is due within 1 s (base), the second within 2 s of that.
    assert await _run_retries(harness, dispatcher, after=timedelta(seconds=1)) == 1  # fails again: requeued
    assert await _run_retries(harness, dispatcher, after=timedelta(seconds=2)) == 1

    assert len(harness.channel.emails) == 1
    assert [(r.status, r.reason, r.attempt) for r in harness.statuses.reports] == [
        (DeliveryStatus.QUEUED, "retry_scheduled:smtp_451", 1),
        (DeliveryStatus.QUEUED, "retry_scheduled:smtp_421", 2),
        (DeliveryStatus.SENT, None, 3),
    ]
    assert await dispatcher.retry_queue.pending() == 0
    history = await harness.ledger.history("evt-1")
    assert [change.status for change in history[0].changes] == [
        DeliveryStatus.SENDING,
        DeliveryStatus.QUEUED,
        DeliveryStatus.QUEUED,
        DeliveryStatus.SENT,
    ]


async def test_the_backoff_grows_with_jitter_and_respects_a_providers_retry_after(harness: Harness) -> None:
    harness.channel.failures = [TransientDeliveryError("http_429", retry_after=5)]
    dispatcher = harness.dispatcher()
    await dispatcher.dispatch([_plan(samples.sample_guardian(1), Channel.SMS)])
    assert await dispatcher.retry_queue.next_due() == harness.clock.now + timedelta(seconds=5)

    backoff = Backoff(base_seconds=1, max_seconds=8)
    rng = random.Random(7)
    delays = [backoff.delay(attempt, rng=rng) for attempt in range(1, 8) for _ in range(50)]
    assert all(0 <= delay <= 8 for delay in delays)
    assert max(backoff.delay(1, rng=rng) for _ in range(200)) <= 1 < max(backoff.delay(3, rng=rng) for _ in range(200))


async def test_transient_failures_past_the_attempt_limit_end_as_failed(harness: Harness) -> None:
    harness.channel.failures = [TransientDeliveryError("http_503")] * 3
    dispatcher = harness.dispatcher()
    await dispatcher.dispatch([_plan(samples.sample_guardian(1, channels=[Channel.SMS]), Channel.SMS)])
    await _run_retries(harness, dispatcher, after=timedelta(seconds=10))
    await _run_retries(harness, dispatcher, after=timedelta(seconds=10))

    assert harness.channel.tries == 3
    assert harness.channel.sms == []
    assert [(r.status, r.reason) for r in harness.statuses.reports][-1] == (
        DeliveryStatus.FAILED,
        "retries_exhausted:http_503",
    )
    assert await dispatcher.retry_queue.pending() == 0


async def test_an_sms_that_cannot_go_out_within_its_hour_expires(harness: Harness) -> None:
    harness.channel.failures = [TransientDeliveryError("http_503")]
    dispatcher = harness.dispatcher()
    (outcome,) = await dispatcher.dispatch([_plan(samples.sample_guardian(1, channels=[Channel.SMS]), Channel.SMS)])
    assert outcome.status is DeliveryStatus.QUEUED

    await _run_retries(harness, dispatcher, after=timedelta(hours=1))

    assert harness.channel.sms == []
    last = harness.statuses.reports[-1]
    assert (last.status, last.reason) == (DeliveryStatus.EXPIRED, "deadline_passed")
    assert await dispatcher.retry_queue.pending() == 0


async def test_nothing_about_a_meeting_goes_out_once_it_has_started(harness: Harness) -> None:
    plan = _plan(samples.sample_guardian(1), Channel.SMS)
    plan = replace(plan, not_after=harness.clock.now)
    (outcome,) = await harness.dispatcher().dispatch([plan])

    assert (outcome.status, outcome.reason) == (DeliveryStatus.EXPIRED, "meeting_started")
    assert harness.channel.tries == 0


async def test_a_retry_due_after_the_meeting_started_expires_and_does_not_fall_back(harness: Harness) -> None:
    harness.channel.failures = [TransientDeliveryError("smtp_451")]
    dispatcher = harness.dispatcher()
    plan = replace(_plan(samples.sample_guardian(1), Channel.EMAIL), not_after=harness.clock.now + timedelta(hours=2))
    await dispatcher.dispatch([plan])

    await _run_retries(harness, dispatcher, after=timedelta(hours=3))

    assert harness.channel.emails == []
    assert harness.channel.sms == []
    assert (harness.statuses.reports[-1].status, harness.statuses.reports[-1].reason) == (
        DeliveryStatus.EXPIRED,
        "meeting_started",
    )


async def test_a_permanent_failure_is_not_retried(harness: Harness) -> None:
    harness.channel.failures = [PermanentDeliveryError("smtp_rcpt_550")]
    dispatcher = harness.dispatcher()
    (outcome,) = await dispatcher.dispatch([_plan(samples.sample_guardian(1, channels=[Channel.EMAIL]), Channel.EMAIL)])

    assert (outcome.status, outcome.reason) == (DeliveryStatus.FAILED, "smtp_rcpt_550")
    assert harness.channel.tries == 1
    assert await dispatcher.retry_queue.pending() == 0


async def test_an_sms_that_cannot_be_delivered_goes_by_email_when_the_guardian_allowed_both(harness: Harness) -> None:
    harness.channel.sms_rejected = True
    guardian = samples.sample_guardian(1, channels=[Channel.EMAIL, Channel.SMS])
    dispatcher = harness.dispatcher()
    (outcome,) = await dispatcher.dispatch([_plan(guardian, Channel.SMS)])

    assert (outcome.status, outcome.reason) == (DeliveryStatus.FAILED, "http_400")
    # The fallback was created in the same transaction as the failure: queued, so no crash can lose it.
    assert await dispatcher.retry_queue.pending() == 1
    await _run_retries(harness, dispatcher, after=timedelta(0))

    (email,) = harness.channel.emails
    assert "Foreldremøte 7B" in email.subject
    assert [(r.channel, r.status, r.reason) for r in harness.statuses.reports] == [
        (Channel.SMS, DeliveryStatus.FAILED, "http_400"),
        (Channel.EMAIL, DeliveryStatus.QUEUED, "fallback_from:sms"),
        (Channel.EMAIL, DeliveryStatus.SENT, None),
    ]


@pytest.mark.parametrize(("phone", "reason"), [("22 12 34 56", "not_mobile"), ("+47 800 12 345", "not_mobile")])
async def test_a_number_that_cannot_take_sms_is_not_texted_and_the_notification_goes_by_email(
    harness: Harness, phone: str, reason: str
) -> None:
    guardian = samples.sample_guardian(1, phone=phone, channels=[Channel.SMS, Channel.EMAIL])
    dispatcher = harness.dispatcher()
    (outcome,) = await dispatcher.dispatch([_plan(guardian, Channel.SMS)])
    await _run_retries(harness, dispatcher, after=timedelta(0))

    assert (outcome.status, outcome.reason) == (DeliveryStatus.FAILED, reason)
    assert harness.channel.sms == []
    (email,) = harness.channel.emails
    assert "Foreldremøte 7B" in email.subject
    assert [(r.channel, r.status, r.reason) for r in harness.statuses.reports] == [
        (Channel.SMS, DeliveryStatus.FAILED, reason),
        (Channel.EMAIL, DeliveryStatus.QUEUED, "fallback_from:sms"),
        (Channel.EMAIL, DeliveryStatus.SENT, None),
    ]


async def test_a_mobile_number_in_another_country_is_texted(harness: Harness) -> None:
    guardian = samples.sample_guardian(1, phone="+44 7400 123456", channels=[Channel.SMS])
    (outcome,) = await harness.dispatcher().dispatch([_plan(guardian, Channel.SMS)])

    assert outcome.status is DeliveryStatus.SENT
    assert [sms.to_e164 for sms in harness.channel.sms] == ["+447400123456"]


async def test_an_sms_that_expires_goes_by_email_within_the_emails_own_window(harness: Harness) -> None:
    harness.channel.failures = [TransientDeliveryError("http_503")]
    guardian = samples.sample_guardian(1, channels=[Channel.EMAIL, Channel.SMS])
    dispatcher = harness.dispatcher()
    await dispatcher.dispatch([_plan(guardian, Channel.SMS)])
    await _run_retries(harness, dispatcher, after=timedelta(hours=1))  # the SMS expires, the email is queued
    await _run_retries(harness, dispatcher, after=timedelta(0))

    assert harness.channel.sms == []
    assert len(harness.channel.emails) == 1
    assert [(r.channel, r.status) for r in harness.statuses.reports][-3:] == [
        (Channel.SMS, DeliveryStatus.EXPIRED),
        (Channel.EMAIL, DeliveryStatus.QUEUED),
        (Channel.EMAIL, DeliveryStatus.SENT),
    ]


async def test_an_email_that_expired_after_a_day_is_not_sent_as_an_sms_a_day_late(harness: Harness) -> None:
    harness.channel.failures = [TransientDeliveryError("smtp_421")]
    guardian = samples.sample_guardian(1, channels=[Channel.EMAIL, Channel.SMS])
    dispatcher = harness.dispatcher()
    await dispatcher.dispatch([_plan(guardian, Channel.EMAIL)])
    await _run_retries(harness, dispatcher, after=timedelta(hours=24))
    await _run_retries(harness, dispatcher, after=timedelta(0))

    assert harness.channel.sms == []
    # The SMS window counts from the email's first try: it closed 23 hours ago.
    assert [(r.channel, r.status, r.reason) for r in harness.statuses.reports][-2:] == [
        (Channel.SMS, DeliveryStatus.QUEUED, "fallback_from:email"),
        (Channel.SMS, DeliveryStatus.EXPIRED, "deadline_passed"),
    ]


async def test_no_fallback_for_a_guardian_who_wants_one_channel_or_already_got_the_other(harness: Harness) -> None:
    harness.channel.sms_rejected = True
    only_sms = samples.sample_guardian(1, channels=[Channel.SMS])
    both = samples.sample_guardian(2, channels=[Channel.EMAIL, Channel.SMS])
    dispatcher = harness.dispatcher()
    # The second guardian's email is planned in the same batch: it goes out once, planned or as the fallback.
    await dispatcher.dispatch([_plan(only_sms, Channel.SMS), _plan(both, Channel.SMS), _plan(both, Channel.EMAIL)])
    await _run_retries(harness, dispatcher, after=timedelta(0))

    assert [email.to for email in harness.channel.emails] == [both.email]
    assert harness.channel.sms == []


async def test_a_sender_whose_claim_passed_on_does_not_overwrite_the_outcome(harness: Harness) -> None:
    plan = _plan(samples.sample_guardian(1), Channel.EMAIL)
    claim = await harness.ledger.begin(
        DeliveryKey("nor-0301-bjolsen", samples.SOURCE, "evt-1", "g-1001", "email", "meeting_invitation"),
        source_event_type="meeting.created",
        school_id=plan.school.id,
        language="nb",
    )
    await harness.ledger.record(claim.notification_id, DeliveryStatus.SENT, only_in_progress=True)

    # A slow sender that still thought it held the claim ends with a permanent error: it changes nothing.
    recorded = await harness.ledger.record(
        claim.notification_id, DeliveryStatus.FAILED, reason="smtp_rcpt_550", only_in_progress=True
    )

    assert recorded is False
    record = await harness.ledger.get(claim.notification_id)
    assert record is not None
    assert record.status is DeliveryStatus.SENT


async def test_a_retry_whose_claim_passed_to_another_worker_is_not_sent(harness: Harness) -> None:
    harness.channel.failures = [TransientDeliveryError("smtp_451")]
    dispatcher = harness.dispatcher()
    await dispatcher.dispatch([_plan(samples.sample_guardian(1), Channel.EMAIL)])
    harness.clock.now += timedelta(seconds=2)
    (due,) = await dispatcher.retry_queue.claim_due(owner="slow", limit=1)

    async def claim_lost() -> bool:
        return False

    outcome = await dispatcher.retry(DeliveryJob.from_json(due.job), still_ours=claim_lost)

    assert outcome is None
    assert harness.channel.emails == []


async def test_a_template_that_cannot_render_fails_that_notification_only(harness: Harness) -> None:
    guardian = samples.sample_guardian(1)
    broken = PlannedNotification(
        source=SourceEventRef(source=samples.SOURCE, id="evt-1", type="meeting.created"),
        school=samples.sample_school(),
        guardian=guardian,
        channel=Channel.EMAIL,
        template="no_such_template",
        context={},
    )
    outcomes = await harness.dispatcher().dispatch([broken, _plan(guardian, Channel.SMS)])

    assert [(o.status, o.reason) for o in outcomes] == [
        (DeliveryStatus.FAILED, "template_error"),
        (DeliveryStatus.SENT, None),
    ]


async def test_a_notification_claimed_by_a_sender_that_crashed_is_sent_once_its_lease_runs_out(
    harness: Harness,
) -> None:
    plan = _plan(samples.sample_guardian(1), Channel.EMAIL)
    # A sender claimed it and died before recording anything.
    await harness.ledger.begin(
        DeliveryKey("nor-0301-bjolsen", samples.SOURCE, "evt-1", "g-1001", "email", "meeting_invitation"),
        source_event_type="meeting.created",
        school_id=plan.school.id,
        language="nb",
    )
    with pytest.raises(NotificationInFlightError):
        await harness.dispatcher().dispatch([plan])
    assert harness.channel.emails == []

    harness.clock.now += timedelta(seconds=harness.ledger.lease_seconds + 1)
    (outcome,) = await harness.dispatcher().dispatch([plan])
    assert outcome.status is DeliveryStatus.SENT
    assert len(harness.channel.emails) == 1


async def test_a_batch_sends_every_plan_but_the_one_another_sender_holds_and_says_which_that_was(
    harness: Harness,
) -> None:
    held, free = _plan(samples.sample_guardian(1), Channel.EMAIL), _plan(samples.sample_guardian(2), Channel.EMAIL)
    # Another sender claimed the first guardian's email and has not recorded it yet.
    await harness.ledger.begin(
        DeliveryKey("nor-0301-bjolsen", samples.SOURCE, "evt-1", "g-1001", "email", "meeting_invitation"),
        source_event_type="meeting.created",
        school_id=held.school.id,
        language="nb",
    )

    held_result, free_result = await harness.dispatcher().dispatch_each([held, free])

    assert isinstance(held_result, NotificationInFlightError)
    assert isinstance(free_result, DeliveryOutcome)
    assert free_result.status is DeliveryStatus.SENT
    assert [email.to for email in harness.channel.emails] == [samples.sample_guardian(2).email]


async def test_notifications_ended_without_sending_are_recorded_and_reported_once_each(harness: Harness) -> None:
    plans = [_plan(samples.sample_guardian(number), Channel.SMS) for number in (1, 2)]
    endings = [(plan, DeliveryStatus.SKIPPED, "late_beyond_grace_period") for plan in plans]

    first = await harness.dispatcher().settle_many_without_sending(endings)
    again = await harness.dispatcher().settle_many_without_sending(endings)  # a round that runs again

    assert [outcome.status for outcome in first] == [DeliveryStatus.SKIPPED, DeliveryStatus.SKIPPED]
    assert all(outcome.already_recorded for outcome in again)
    assert sorted((report.guardian_id, report.status) for report in harness.statuses.reports) == [
        ("g-1001", DeliveryStatus.SKIPPED),
        ("g-1002", DeliveryStatus.SKIPPED),
    ]
    assert harness.channel.sms == []


class GatedChannel(ScriptedChannel):
    """Holds every email until `gate` is set, as a provider that hangs would (SMS go at once)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.emails_waiting = 0

    async def send_email(self, message: OutgoingEmail) -> DeliveryReceipt:
        self.emails_waiting += 1
        await self.gate.wait()
        return await super().send_email(message)


def _one_slot(harness: Harness, channel: ScriptedChannel) -> Dispatcher:
    return Dispatcher(
        ledger=harness.ledger,
        render=render_notification,
        email=channel,
        sms=channel,
        status_sink=harness.statuses,
        email_sender="Bjølsen skole <no-reply@bjolsen.example.no>",
        clock=harness.clock,
        concurrency=1,
    )


async def test_a_claim_that_waited_past_its_lease_and_was_taken_over_is_not_sent_a_second_time(
    harness: Harness,
) -> None:
    guardian = samples.sample_guardian(1)
    email, sms = _plan(guardian, Channel.EMAIL), _plan(guardian, Channel.SMS)
    hanging = GatedChannel()
    first = asyncio.create_task(_one_slot(harness, hanging).dispatch([email, sms]))
    # The email holds the only slot; the SMS, claimed with it, waits for the slot while its lease runs out.
    await wait_until(lambda: hanging.emails_waiting == 1, what="the email hanging at the provider")
    harness.clock.now += timedelta(seconds=harness.ledger.lease_seconds + 1)
    # Meanwhile the event is handled again elsewhere, which takes the SMS over and sends it.
    (taken_over,) = await harness.dispatcher().dispatch([sms])
    assert taken_over.status is DeliveryStatus.SENT

    hanging.gate.set()
    with pytest.raises(NotificationInFlightError):
        await first

    assert len(harness.channel.sms) == 1
    assert hanging.sms == []
    assert len(hanging.emails) == 1


async def test_a_claim_that_waited_long_but_is_still_ours_is_renewed_and_sent(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    renewed: list[str] = []
    renew = harness.ledger.renew

    async def counting_renew(notification_id: str, *, attempts: int) -> bool:
        renewed.append(notification_id)
        return await renew(notification_id, attempts=attempts)

    monkeypatch.setattr(harness.ledger, "renew", counting_renew)
    guardian = samples.sample_guardian(1)
    hanging = GatedChannel()
    first = asyncio.create_task(
        _one_slot(harness, hanging).dispatch([_plan(guardian, Channel.EMAIL), _plan(guardian, Channel.SMS)])
    )
    await wait_until(lambda: hanging.emails_waiting == 1, what="the email hanging at the provider")
    harness.clock.now += timedelta(seconds=harness.ledger.lease_seconds * 0.75)

    hanging.gate.set()
    outcomes = await first

    assert [outcome.status for outcome in outcomes] == [DeliveryStatus.SENT, DeliveryStatus.SENT]
    assert len(hanging.sms) == 1
    # Only the SMS waited long enough to need it; the email had its slot at once.
    assert renewed == [outcomes[1].notification_id]


async def test_a_sender_whose_heartbeat_is_overdue_sends_nothing_and_hands_the_event_back(harness: Harness) -> None:
    # Its claims are about to look abandoned to other senders, who will send them: this one must not.
    liveness = SenderLiveness(harness.ledger.engine, timeout=timedelta(seconds=20), clock=harness.clock)
    await liveness.start()
    harness.ledger.liveness = liveness
    try:
        assert liveness._beating is not None
        liveness._beating.cancel()
        harness.clock.now += timedelta(seconds=10)

        with pytest.raises(NotificationInFlightError):
            await harness.dispatcher().dispatch([_plan(samples.sample_guardian(1), Channel.SMS)])
    finally:
        await liveness.stop()

    assert harness.channel.sms == []
