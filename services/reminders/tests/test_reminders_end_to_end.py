"""Reminders end to end on the real broker, with a clock the test moves instead of sleeping for days."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from notify_reminders.firing import FiringReport
from notify_reminders.runtime import Runtime
from notify_reminders.store import ReminderState
from notify_reminders.testing import Deployment
from notify_shared import samples
from notify_shared.contract import Channel, CloudEvent, Rsvp
from notify_shared.testing.kafka import TopicReader, publish_applied
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka

OSLO = ZoneInfo("Europe/Oslo")
MEETING = samples.sample_meeting()  # Thursday 3 December 2026, 18:00–19:30 in Oslo
EMAIL_DUE = datetime(2026, 12, 1, 18, 0, tzinfo=OSLO)
SMS_DUE = datetime(2026, 12, 3, 16, 0, tzinfo=OSLO)


async def _apply(deployment: Deployment, kafka_bootstrap: str, *events: CloudEvent) -> None:
    """Publish events and wait until the service has committed them, i.e. stored what they mean."""
    await publish_applied(kafka_bootstrap, deployment.topics, deployment.settings.consumer_group, *events)


async def _fire_at(deployment: Deployment, runtime: Runtime, moment: datetime) -> None:
    deployment.clock.set(moment)
    await runtime.runner.fire_due()


def _emails(deployment: Deployment) -> list[str]:
    return [item.envelope_to[0] for item in deployment.smtp.received]


def _texts(deployment: Deployment) -> list[str]:
    return [message["to"] for message in deployment.sms.messages()]


async def test_a_new_meeting_gets_an_email_two_days_before_and_an_sms_two_hours_before_at_those_instants(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    async with deployment.running() as runtime:
        await _apply(deployment, kafka_bootstrap, samples.meeting_created(meeting=MEETING))
        assert await runtime.store.next_due() == EMAIL_DUE

        await _fire_at(deployment, runtime, EMAIL_DUE - timedelta(seconds=1))
        assert _emails(deployment) == []
        await _fire_at(deployment, runtime, EMAIL_DUE)
        assert sorted(_emails(deployment)) == ["guardian1@example.no", "guardian2@example.no"]
        assert _texts(deployment) == []

        await _fire_at(deployment, runtime, SMS_DUE - timedelta(seconds=1))
        assert _texts(deployment) == []
        await _fire_at(deployment, runtime, SMS_DUE)
        assert sorted(_texts(deployment)) == ["+4790000001", "+4790000002"]

        await _fire_at(deployment, runtime, SMS_DUE + timedelta(minutes=5))
    assert len(deployment.smtp.received) == 2
    assert len(deployment.sms.messages()) == 2
    reminder = deployment.smtp.received[0].message
    assert "Foreldremøte 7B" in reminder["Subject"]
    body = reminder.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Rom 204" in text
    assert "Leirskolen" in text  # what to bring or prepare


async def test_the_alarm_wakes_the_service_when_a_reminder_falls_due(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    async with deployment.running() as runtime:
        await _apply(deployment, kafka_bootstrap, samples.meeting_created(meeting=MEETING))
        # Two seconds before the SMS is due, by the service's clock: APScheduler must fire on its own.
        deployment.clock.set(SMS_DUE - timedelta(seconds=2))
        await runtime.runner.fire_due()  # the emails, long overdue in this jump, are settled first
        assert await runtime.alarm.rearm() == SMS_DUE
        deployment.clock.advance(timedelta(seconds=2))  # the wall clock catches up by the time the alarm rings
        await wait_until(lambda: len(deployment.sms.messages()) == 2, within=15, what="the alarm to send the SMS")


async def test_a_moved_meeting_moves_its_reminders_and_they_say_the_new_place(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    guardian = samples.sample_guardian(1, channels=[Channel.SMS])
    moved = MEETING.model_copy(
        update={
            "starts_at": MEETING.starts_at + timedelta(days=1),
            "ends_at": MEETING.ends_at + timedelta(days=1),
            "location": "Gymsalen, Bjølsen skole",
        }
    )
    async with deployment.running() as runtime:
        await _apply(
            deployment,
            kafka_bootstrap,
            samples.meeting_created(meeting=MEETING, recipients=[guardian]),
            samples.meeting_updated(meeting=moved, recipients=[guardian]),
        )
        assert await runtime.store.next_due() == SMS_DUE + timedelta(days=1)
        await _fire_at(deployment, runtime, SMS_DUE)
        assert _texts(deployment) == []
        await _fire_at(deployment, runtime, SMS_DUE + timedelta(days=1))
    (sms,) = deployment.sms.messages()
    assert "Gymsalen" in sms["text"]


async def test_a_cancelled_meeting_sends_no_reminder(deployment: Deployment, kafka_bootstrap: str) -> None:
    async with deployment.running() as runtime:
        await _apply(
            deployment,
            kafka_bootstrap,
            samples.meeting_created(meeting=MEETING),
            samples.meeting_cancelled(meeting=MEETING),
        )
        assert await runtime.store.next_due() is None
        await _fire_at(deployment, runtime, SMS_DUE + timedelta(minutes=1))
    assert deployment.smtp.received == []
    assert deployment.sms.messages() == []


async def test_a_guardian_who_declined_or_may_not_be_notified_gets_no_reminder(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    recipients = [
        samples.sample_guardian(1, rsvp=Rsvp.DECLINED),
        samples.sample_guardian(2, has_parental_responsibility=False),
        samples.sample_guardian(3, blocked=True),
        samples.sample_guardian(4, rsvp=Rsvp.ACCEPTED),
    ]
    async with deployment.running() as runtime:
        await _apply(deployment, kafka_bootstrap, samples.meeting_created(meeting=MEETING, recipients=recipients))
        await _fire_at(deployment, runtime, EMAIL_DUE)
        await _fire_at(deployment, runtime, SMS_DUE)
    assert _emails(deployment) == ["guardian4@example.no"]
    assert _texts(deployment) == ["+4790000004"]


async def test_reminders_too_late_or_too_close_to_the_invitation_are_skipped_with_a_status(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    # Invited on the meeting day at 15:30, 2.5 hours before the start: the email was due two days ago, and the
    # SMS at 16:00 would come half an hour after the invitation.
    deployment.clock.set(datetime(2026, 12, 3, 15, 30, tzinfo=OSLO))
    guardian = samples.sample_guardian(1)
    async with (
        deployment.running(),
        TopicReader(kafka_bootstrap, deployment.topics.notification_status) as statuses,
    ):
        await _apply(deployment, kafka_bootstrap, samples.meeting_created(meeting=MEETING, recipients=[guardian]))

        async def two_statuses() -> bool:
            return len(await statuses.poll()) >= 2

        await wait_until(two_statuses, what="a skipped status per reminder")
    reasons = {(s["data"]["channel"], s["data"]["status"], s["data"]["reason"]) for s in statuses.records}
    assert reasons == {
        ("email", "skipped", "due_before_event_arrived"),
        ("sms", "skipped", "within_an_hour_of_invitation"),
    }


@pytest.mark.parametrize(
    ("late_by", "sent"), [(timedelta(minutes=20), True), (timedelta(minutes=40), False)], ids=["inside", "outside"]
)
async def test_after_downtime_a_reminder_goes_out_only_inside_the_grace_period(
    deployment: Deployment, kafka_bootstrap: str, late_by: timedelta, sent: bool
) -> None:
    guardian = samples.sample_guardian(1, channels=[Channel.SMS])
    async with deployment.running():
        await _apply(deployment, kafka_bootstrap, samples.meeting_created(meeting=MEETING, recipients=[guardian]))
    # The service is down when the SMS falls due and comes back `late_by` later.
    deployment.clock.set(SMS_DUE + late_by)
    async with (
        deployment.running() as runtime,
        TopicReader(kafka_bootstrap, deployment.topics.notification_status) as statuses,
    ):
        await runtime.runner.fire_due()

        async def one_status() -> bool:
            return len(await statuses.poll()) >= 1

        await wait_until(one_status, what="the reminder's status")
    assert len(deployment.sms.messages()) == (1 if sent else 0)
    (status,) = statuses.records
    expected = ("sent", None) if sent else ("skipped", "late_beyond_grace_period")
    assert (status["data"]["status"], status["data"].get("reason")) == expected


async def test_a_restart_between_scheduling_and_firing_sends_each_reminder_exactly_once(
    deployment_on_each_database: Deployment, kafka_bootstrap: str
) -> None:
    deployment = deployment_on_each_database
    async with deployment.running():
        await _apply(deployment, kafka_bootstrap, samples.meeting_created(meeting=MEETING))
    async with deployment.running() as runtime:
        await _fire_at(deployment, runtime, EMAIL_DUE)
        await _fire_at(deployment, runtime, SMS_DUE)
    async with deployment.running() as runtime:
        await _fire_at(deployment, runtime, SMS_DUE + timedelta(minutes=1))
        counts = await runtime.store.count_by_state()
    assert sorted(_emails(deployment)) == ["guardian1@example.no", "guardian2@example.no"]
    assert sorted(_texts(deployment)) == ["+4790000001", "+4790000002"]
    assert counts == {ReminderState.SENT.value: 4}


@pytest.mark.postgres
async def test_two_replicas_on_postgresql_send_each_reminder_exactly_once(
    deployment_on_each_database: Deployment, kafka_bootstrap: str
) -> None:
    deployment = deployment_on_each_database
    if not deployment.settings.database_url.startswith("postgresql"):
        pytest.skip("replicas need a shared PostgreSQL database")
    recipients = [samples.sample_guardian(number) for number in range(1, 41)]
    # Small batches, so the replicas' claims interleave instead of one taking everything at once.
    deployment.settings = deployment.settings.model_copy(update={"batch_size": 3})
    async with deployment.running("replica-a") as first, deployment.running("replica-b") as second:
        await _apply(deployment, kafka_bootstrap, samples.meeting_created(meeting=MEETING, recipients=recipients))
        reports: list[FiringReport] = []
        for moment in (EMAIL_DUE, SMS_DUE):
            deployment.clock.set(moment)
            reports += await asyncio.gather(first.runner.fire_due(), second.runner.fire_due())
    assert sorted(_emails(deployment)) == sorted(f"guardian{number}@example.no" for number in range(1, 41))
    assert len(_texts(deployment)) == len(set(_texts(deployment))) == 40
    assert sum(report.sent for report in reports) == 80


async def test_each_meeting_event_says_on_event_handled_what_it_did_to_the_schedule(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    created = samples.meeting_created(meeting=MEETING)
    cancelled = samples.meeting_cancelled(meeting=MEETING)
    async with deployment.running():
        await _apply(deployment, kafka_bootstrap, created, cancelled)
    async with TopicReader(kafka_bootstrap, deployment.settings.topics.event_handled) as handled:
        reports = {report["data"]["source_event_id"]: report["data"] for report in await handled.read_to_end()}

    assert (reports[created.id]["outcome"], reports[created.id]["scheduled"]) == ("scheduled", 4)
    assert (reports[cancelled.id]["outcome"], reports[cancelled.id]["reason"]) == (
        "nothing_to_send",
        "reminders_cancelled",
    )
    assert {report["service"] for report in reports.values()} == {"reminders"}
