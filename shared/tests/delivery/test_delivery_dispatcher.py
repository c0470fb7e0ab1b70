"""The delivery core: claim, screen, render, send with retries, record, report — with a real ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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
    Dispatcher,
    NotificationInFlightError,
    PlannedNotification,
    SourceEventRef,
)
from notify_shared.ledger import DeliveryKey, DeliveryLedger, DeliveryStatus
from notify_shared.rendering import render_notification


@dataclass
class ScriptedChannel:
    """A channel that fails as scripted, then accepts; it keeps what it accepted."""

    name: str = "scripted"
    failures: list[Exception] = field(default_factory=list)
    emails: list[OutgoingEmail] = field(default_factory=list)
    sms: list[OutgoingSms] = field(default_factory=list)
    tries: int = 0

    def _maybe_fail(self) -> None:
        self.tries += 1
        if self.failures:
            raise self.failures.pop(0)

    async def send_email(self, message: OutgoingEmail) -> DeliveryReceipt:
        self._maybe_fail()
        self.emails.append(message)
        return DeliveryReceipt(provider=self.name, provider_message_id=f"m-{len(self.emails)}")

    async def send_sms(self, message: OutgoingSms) -> DeliveryReceipt:
        self._maybe_fail()
        self.sms.append(message)
        return DeliveryReceipt(provider=self.name, provider_message_id=f"s-{len(self.sms)}")

    async def aclose(self) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Harness:
    ledger: DeliveryLedger
    channel: ScriptedChannel
    statuses: CollectingStatusSink
    delays: list[float]
    clock: Clock

    def dispatcher(self) -> Dispatcher:
        async def record_delay(seconds: float) -> None:
            self.delays.append(seconds)

        return Dispatcher(
            ledger=self.ledger,
            render=render_notification,
            email=self.channel,
            sms=self.channel,
            status_sink=self.statuses,
            email_sender="Bjølsen skole <no-reply@bjolsen.example.no>",
            max_attempts=3,
            backoff=Backoff(base_seconds=1, max_seconds=8),
            sleep=record_delay,
            clock=self.clock,
        )


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    clock = Clock()
    ledger = await DeliveryLedger.connect(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}", clock=clock)
    try:
        yield Harness(ledger, ScriptedChannel(), CollectingStatusSink(), [], clock)
    finally:
        await ledger.aclose()


def _plan(guardian: Recipient, channel: Channel, event_id: str = "evt-1") -> PlannedNotification:
    event = samples.meeting_created(event_id=event_id, recipients=[guardian])
    return PlannedNotification(
        source=SourceEventRef(id=event.id, type=event.type),
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
    record = await harness.ledger.get(DeliveryKey("evt-1", "g-1001", "sms", "meeting_invitation"))
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
    ],
)
async def test_a_guardian_who_must_not_or_cannot_be_reached_gets_nothing_and_a_clear_status(
    harness: Harness, overrides: dict[str, object], status: DeliveryStatus, reason: str
) -> None:
    guardian = samples.sample_guardian(1, **overrides)
    (outcome,) = await harness.dispatcher().dispatch([_plan(guardian, Channel.SMS)])

    assert (outcome.status, outcome.reason) == (status, reason)
    assert harness.channel.tries == 0
    assert [(r.status, r.reason) for r in harness.statuses.reports] == [(status, reason)]


async def test_a_transient_failure_is_retried_with_growing_backoff(harness: Harness) -> None:
    harness.channel.failures = [TransientDeliveryError("smtp_451"), TransientDeliveryError("smtp_421")]
    (outcome,) = await harness.dispatcher().dispatch([_plan(samples.sample_guardian(1), Channel.EMAIL)])

    assert outcome.status is DeliveryStatus.SENT
    assert harness.channel.tries == 3
    assert len(harness.delays) == 2
    assert all(0 <= delay <= 8 for delay in harness.delays)
    assert harness.statuses.reports[-1].attempt == 3


async def test_a_provider_asking_to_wait_is_given_at_least_that_long(harness: Harness) -> None:
    harness.channel.failures = [TransientDeliveryError("http_429", retry_after=5)]
    await harness.dispatcher().dispatch([_plan(samples.sample_guardian(1), Channel.SMS)])
    assert harness.delays == [5]


async def test_transient_failures_past_the_attempt_limit_end_as_failed(harness: Harness) -> None:
    harness.channel.failures = [TransientDeliveryError("http_503")] * 3
    (outcome,) = await harness.dispatcher().dispatch([_plan(samples.sample_guardian(1), Channel.SMS)])

    assert (outcome.status, outcome.reason) == (DeliveryStatus.FAILED, "retries_exhausted:http_503")
    assert harness.channel.sms == []


async def test_a_permanent_failure_is_not_retried(harness: Harness) -> None:
    harness.channel.failures = [PermanentDeliveryError("smtp_rcpt_550")]
    (outcome,) = await harness.dispatcher().dispatch([_plan(samples.sample_guardian(1), Channel.EMAIL)])

    assert (outcome.status, outcome.reason) == (DeliveryStatus.FAILED, "smtp_rcpt_550")
    assert harness.channel.tries == 1
    assert harness.delays == []


async def test_a_template_that_cannot_render_fails_that_notification_only(harness: Harness) -> None:
    guardian = samples.sample_guardian(1)
    broken = PlannedNotification(
        source=SourceEventRef(id="evt-1", type="meeting.created"),
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
        DeliveryKey("evt-1", "g-1001", "email", "meeting_invitation"),
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
