"""Two admin systems of one school that number their events alike: a CloudEvents id is unique only per `source`,
so the same id from each is two events, and only the same id from the same source is a repeat (issue 18)."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from typing import Any

import pytest

from notify_invitations.testing import Deployment
from notify_shared import samples
from notify_shared.contract import Channel, MeetingCreated
from notify_shared.testing.kafka import EventPublisher, TopicReader
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka

SHARED_EVENT_ID = "01JE2K7V4N8Q3R5T9W1X6Y0Z2A"
VISMA = "/visma-flyt/0301"
IST = "urn:ist:extens:0301"
PARENT = samples.sample_guardian(1, channels=[Channel.EMAIL])


def _created_by(source: str, meeting_id: str, title: str) -> MeetingCreated:
    event = samples.meeting_created(
        event_id=SHARED_EVENT_ID,
        meeting=samples.sample_meeting(meeting_id=meeting_id, title=title),
        recipients=[PARENT],
        time=datetime(2026, 11, 20, 9, 0, tzinfo=samples.OSLO),
    )
    return event.model_copy(update={"source": source})


def _text_of(message: EmailMessage) -> str:
    return "\n".join(
        str(part.get_content()) for part in message.walk() if part.get_content_type() in ("text/plain", "text/html")
    )


def _handled(reports: list[dict[str, Any]], source: str) -> list[tuple[str, dict[str, int]]]:
    return [
        (report["data"]["outcome"], report["data"]["notifications"])
        for report in reports
        if (report["data"]["source_event_source"], report["data"]["source_event_id"]) == (source, SHARED_EVENT_ID)
    ]


async def test_the_same_event_id_from_two_sources_of_one_school_invites_to_both_meetings_and_a_redelivery_to_none(
    deployment_on_each_database: Deployment, kafka_bootstrap: str
) -> None:
    deployment = deployment_on_each_database  # the ledger's unique key behaves alike on both
    # The class's parent meeting from the school's admin system, and a meeting about the class trip from the
    # school's other system, which happens to use the same event id; the same parent is invited to both.
    parent_meeting = _created_by(VISMA, "m-7b-foreldremote", "Foreldremøte 7B")
    trip = _created_by(IST, "m-7b-leirskole", "Informasjonsmøte om leirskolen")
    sent = deployment.smtp.received
    async with (
        deployment.running(),
        EventPublisher(kafka_bootstrap, deployment.topics) as publisher,
        TopicReader(kafka_bootstrap, deployment.topics.event_handled) as handled,
        TopicReader(kafka_bootstrap, deployment.topics.notification_status) as statuses,
    ):
        for event, reports in ((parent_meeting, 1), (trip, 1), (parent_meeting, 2)):  # the last: a redelivery

            async def reported(source: str = event.source, times: int = reports) -> bool:
                return len(_handled(await handled.poll(), source)) == times

            await publisher.publish(event)
            await wait_until(reported, what=f"event.handled for the event from {event.source}")
        # Each status is published before its event's event.handled: all are on the topic by now.
        sent_statuses = [
            (status["data"]["source_event_source"], status["data"]["notification_id"])
            for status in await statuses.read_to_end()
            if status["data"]["status"] == "sent"
        ]

    assert _handled(handled.records, VISMA) == [("notified", {"sent": 1}), ("already_handled", {})]
    assert _handled(handled.records, IST) == [("notified", {"sent": 1})]
    # The parent got both invitations, one email each.
    texts = [_text_of(item.message) for item in sent]
    assert len(texts) == 2
    assert sum("Foreldremøte 7B" in text for text in texts) == 1
    assert sum("Informasjonsmøte om leirskolen" in text for text in texts) == 1
    assert sorted(source for source, _ in sent_statuses) == sorted([IST, VISMA])
    assert len({notification_id for _, notification_id in sent_statuses}) == 2
