"""Guardians' answers change the reminders still to come: none after a "no", and "you are coming" after a "yes"."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from notify_reminders.testing import Deployment
from notify_shared import samples
from notify_shared.contract import AnswerChannel, CloudEvent, GuardianAnswer, MeetingRsvp, Rsvp
from notify_shared.testing.kafka import publish_applied

pytestmark = pytest.mark.kafka

OSLO = ZoneInfo("Europe/Oslo")
MEETING = samples.sample_meeting()  # Thursday 3 December 2026, 18:00–19:30 in Oslo
EMAIL_DUE = datetime(2026, 12, 1, 18, 0, tzinfo=OSLO)
SMS_DUE = datetime(2026, 12, 3, 16, 0, tzinfo=OSLO)


def _answer(guardian_id: str, answer: Rsvp, answered_at: datetime) -> MeetingRsvp:
    return MeetingRsvp(
        id=samples.new_id(),
        source="/notify/responses",
        time=answered_at,
        data=GuardianAnswer(
            school_id="nor-0301-bjolsen",
            meeting_id=MEETING.meeting_id,
            guardian_id=guardian_id,
            answer=answer,
            answered_at=answered_at,
            via=AnswerChannel.WEB,
        ),
    )


async def _apply(deployment: Deployment, kafka_bootstrap: str, *events: CloudEvent) -> None:
    await publish_applied(kafka_bootstrap, deployment.topics, deployment.settings.consumer_group, *events)


async def test_a_guardian_who_declines_gets_no_reminder_and_one_who_accepts_is_told_so(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    first, second = samples.sample_guardian(1), samples.sample_guardian(2)
    async with deployment.running() as runtime:
        await _apply(deployment, kafka_bootstrap, samples.meeting_created(meeting=MEETING, recipients=[first, second]))
        answered_at = datetime(2026, 11, 21, 19, 0, tzinfo=OSLO)
        await _apply(
            deployment,
            kafka_bootstrap,
            _answer(first.guardian_id, Rsvp.DECLINED, answered_at),
            _answer(second.guardian_id, Rsvp.ACCEPTED, answered_at),
        )

        for due in (EMAIL_DUE, SMS_DUE):
            deployment.clock.set(due + timedelta(minutes=1))
            await runtime.runner.fire_due()

    recipients = sorted(item.envelope_to[0] for item in deployment.smtp.received)
    assert recipients == ["guardian2@example.no"]
    assert [message["to"] for message in deployment.sms.messages()] == [second.phone]
    body = deployment.smtp.received[0].message.get_body(("plain",))
    assert body is not None
    assert "Du har gitt skolen beskjed om at du kommer." in body.get_content()
    assert "Du har gitt skolen beskjed om at du kommer." in deployment.sms.messages()[0]["text"]


async def test_a_change_of_mind_brings_back_only_the_reminders_still_to_come(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    guardian = samples.sample_guardian(1)
    async with deployment.running() as runtime:
        await _apply(deployment, kafka_bootstrap, samples.meeting_created(meeting=MEETING, recipients=[guardian]))
        await _apply(
            deployment,
            kafka_bootstrap,
            _answer(guardian.guardian_id, Rsvp.DECLINED, datetime(2026, 11, 21, tzinfo=OSLO)),
        )
        deployment.clock.set(EMAIL_DUE + timedelta(minutes=1))
        await runtime.runner.fire_due()  # the email reminder was due while the answer was "no"

        later = datetime(2026, 12, 2, 12, 0, tzinfo=OSLO)
        older = datetime(2026, 11, 20, 12, 0, tzinfo=OSLO)
        await _apply(
            deployment,
            kafka_bootstrap,
            _answer(guardian.guardian_id, Rsvp.TENTATIVE, later),
            # An older answer read late changes nothing.
            _answer(guardian.guardian_id, Rsvp.DECLINED, older),
        )
        deployment.clock.set(SMS_DUE + timedelta(minutes=1))
        await runtime.runner.fire_due()

    assert deployment.smtp.received == []
    assert [message["to"] for message in deployment.sms.messages()] == [guardian.phone]
