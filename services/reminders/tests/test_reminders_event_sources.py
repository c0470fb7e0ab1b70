"""Two admin systems of one school that number their events alike: a CloudEvents id is unique only per `source`,
so the same id from each is two meetings to remind of, and only the same id from the same source is a repeat
(issue 18)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from notify_reminders.testing import Deployment
from notify_shared import samples
from notify_shared.contract import Channel, MeetingCreated
from notify_shared.testing.kafka import publish_applied

pytestmark = pytest.mark.kafka

OSLO = ZoneInfo("Europe/Oslo")
SHARED_EVENT_ID = "01JE2K7V4N8Q3R5T9W1X6Y0Z2A"
PARENT = samples.sample_guardian(1, channels=[Channel.EMAIL])
EMAIL_DUE = datetime(2026, 12, 1, 18, 0, tzinfo=OSLO)  # two days before the meetings (Thursday 3 December, 18:00)


def _created_by(source: str, meeting_id: str, title: str) -> MeetingCreated:
    event = samples.meeting_created(
        event_id=SHARED_EVENT_ID,
        meeting=samples.sample_meeting(meeting_id=meeting_id, title=title),
        recipients=[PARENT],
    )
    return event.model_copy(update={"source": source})


async def test_the_same_event_id_from_two_sources_of_one_school_gives_both_meetings_their_reminders(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    parent_meeting = _created_by("/visma-flyt/0301", "m-7b-foreldremote", "Foreldremøte 7B")
    trip = _created_by("urn:ist:extens:0301", "m-7b-leirskole", "Informasjonsmøte om leirskolen")
    async with deployment.running() as runtime:
        # The last one: Kafka delivering the first event again.
        await publish_applied(
            kafka_bootstrap, deployment.topics, deployment.settings.consumer_group, parent_meeting, trip, parent_meeting
        )
        deployment.clock.set(EMAIL_DUE)
        await runtime.runner.fire_due()

    subjects = sorted(str(item.message["Subject"]) for item in deployment.smtp.received)
    assert len(subjects) == 2
    assert "Foreldremøte 7B" in subjects[0]
    assert "Informasjonsmøte om leirskolen" in subjects[1]
