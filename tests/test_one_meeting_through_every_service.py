"""Cross-service: one meeting.created on the real broker reaches both services that care, each in its own
consumer group, and neither knows the other exists."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from notify_invitations.testing import Deployment as InvitationsDeployment
from notify_invitations.testing import isolated_settings as invitations_settings
from notify_reminders.testing import Deployment as RemindersDeployment
from notify_reminders.testing import TestClock
from notify_reminders.testing import isolated_settings as reminders_settings
from notify_shared import samples
from notify_shared.contract import Channel
from notify_shared.testing.kafka import EventPublisher, TopicReader, create_all_topics
from notify_shared.testing.sinks import SmsSink, SmtpSink, sms_sink, smtp_sink
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka

OSLO = ZoneInfo("Europe/Oslo")


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with smtp_sink() as sink:
        yield sink


@pytest.fixture
def sms() -> Iterator[SmsSink]:
    with sms_sink() as sink:
        yield sink


async def test_a_new_meeting_brings_an_invitation_now_and_a_reminder_two_hours_before(
    kafka_bootstrap: str, tmp_path: Path, smtp: SmtpSink, sms: SmsSink
) -> None:
    invitations = invitations_settings(kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path / "i", smtp=smtp, sms=sms)
    reminders = reminders_settings(
        kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path / "r", smtp=smtp, sms=sms
    ).model_copy(update={"topic_prefix": invitations.topic_prefix})
    await create_all_topics(kafka_bootstrap, invitations.topics)
    clock = TestClock(datetime(2026, 11, 20, 9, 0, tzinfo=OSLO))
    guardian = samples.sample_guardian(1, channels=[Channel.SMS])
    meeting = samples.sample_meeting()

    async with (
        InvitationsDeployment(invitations, smtp, sms).running(),
        RemindersDeployment(reminders, clock, smtp, sms).running() as reminder_runtime,
        EventPublisher(kafka_bootstrap, invitations.topics) as publisher,
        TopicReader(kafka_bootstrap, invitations.topics.notification_status) as statuses,
    ):
        await publisher.publish(samples.meeting_created(meeting=meeting, recipients=[guardian]))
        await wait_until(lambda: len(sms.messages()) == 1, what="the invitation SMS")

        async def reminder_scheduled() -> bool:
            return await reminder_runtime.store.next_due() is not None

        await wait_until(reminder_scheduled, what="the reminder to be scheduled")
        sms_due = meeting.starts_at - timedelta(hours=2)
        assert await reminder_runtime.store.next_due() == sms_due
        clock.set(sms_due)
        await reminder_runtime.runner.fire_due()

        async def both_statuses() -> bool:
            return len(await statuses.poll()) >= 2

        await wait_until(both_statuses, what="a status from each service")

    invitation, reminder = sms.messages()
    assert "Invitasjon" in invitation["text"]
    assert "Påminnelse" in reminder["text"]
    sources = sorted(status["source"] for status in statuses.records)
    assert sources == ["/notify/invitations", "/notify/reminders"]
    assert all(status["data"]["status"] == "sent" for status in statuses.records)
