"""Quiet hours: an invitation, update or cancellation decided at night reaches the inbox at once, the phone at 07:00."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from notify_invitations.testing import Deployment
from notify_shared import samples
from notify_shared.testing.clocks import SettableClock
from notify_shared.testing.kafka import EventPublisher, TopicReader
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka

OSLO = ZoneInfo("Europe/Oslo")
LATE_EVENING = datetime(2026, 11, 20, 22, 6, tzinfo=OSLO)
NEXT_MORNING = datetime(2026, 11, 21, 7, 0, tzinfo=OSLO)


def at_night(deployment: Deployment, clock: SettableClock) -> Deployment:
    # The retry worker looks for due notifications often, so moving the clock to the morning is seen at once.
    settings = deployment.settings.model_copy(update={"delivery_retry_poll_interval": timedelta(seconds=0.2)})
    return Deployment(settings, deployment.smtp, deployment.sms, clock=clock)


def sms_statuses(statuses: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [
        (status["data"]["status"], status["data"].get("reason"))
        for status in statuses
        if status["data"]["channel"] == "sms"
    ]


async def test_an_invitation_decided_at_night_is_emailed_at_once_and_texted_at_the_end_of_quiet_hours(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    clock = SettableClock(LATE_EVENING)
    night = at_night(deployment, clock)
    event = samples.meeting_created(time=LATE_EVENING)
    async with (
        night.running(),
        EventPublisher(kafka_bootstrap, night.topics) as publisher,
        TopicReader(kafka_bootstrap, night.topics.notification_status) as statuses,
    ):
        await publisher.publish(event)

        async def both_texts_held() -> bool:
            return sms_statuses(await statuses.poll()).count(("queued", "quiet_hours")) == 2

        await wait_until(both_texts_held, what="both SMS held for quiet hours")
        await wait_until(lambda: len(night.smtp.received) == 2, what="both emails")
        assert night.sms.messages() == []

        clock.now = NEXT_MORNING
        await wait_until(lambda: len(night.sms.messages()) == 2, what="both SMS at 07:00")

        async def both_texts_sent() -> bool:
            return sms_statuses(await statuses.poll()).count(("sent", None)) == 2

        await wait_until(both_texts_sent, what="both SMS `sent`")

    assert sorted(sms["to"] for sms in night.sms.messages()) == sorted(
        str(guardian.phone) for guardian in event.data.recipients
    )
    assert "Rom 204" in night.sms.messages()[0]["text"]


async def test_a_meeting_that_starts_before_the_morning_is_texted_at_once(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    clock = SettableClock(LATE_EVENING)
    night = at_night(deployment, clock)
    starts = datetime(2026, 11, 21, 6, 30, tzinfo=OSLO)
    meeting = samples.sample_meeting(starts_at=starts, ends_at=starts + timedelta(minutes=30))
    async with night.running(), EventPublisher(kafka_bootstrap, night.topics) as publisher:
        await publisher.publish(samples.meeting_created(meeting=meeting, time=LATE_EVENING))
        await wait_until(lambda: len(night.sms.messages()) == 2, what="both SMS, at once")

    assert len(night.smtp.received) == 2
