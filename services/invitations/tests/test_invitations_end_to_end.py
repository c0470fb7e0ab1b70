"""Invitations end to end: CloudEvents on the real Kafka broker in, emails and SMS out."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from email.message import EmailMessage

import pytest
from icalendar import Calendar

from notify_invitations.testing import Deployment
from notify_shared import samples
from notify_shared.contract import Channel
from notify_shared.testing.kafka import EventPublisher, TopicReader, committed_offset
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka


def _calendar_of(message: EmailMessage) -> Calendar:
    parts = [part for part in message.walk() if part.get_content_type() == "text/calendar"]
    assert parts, "the email has no text/calendar part"
    payload = parts[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    return Calendar.from_ical(payload)


def _the_event(calendar: Calendar) -> object:
    return next(component for component in calendar.walk("VEVENT"))


async def test_a_new_meeting_reaches_guardians_by_email_with_calendar_file_and_by_sms(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    event = samples.meeting_created()
    async with deployment.running(), EventPublisher(kafka_bootstrap, deployment.topics) as publisher:
        await publisher.publish(event)
        await wait_until(
            lambda: len(deployment.smtp.received) == 2 and len(deployment.sms.messages()) == 2,
            what="two emails and two SMS",
        )

    by_recipient = {item.envelope_to[0]: item.message for item in deployment.smtp.received}
    assert sorted(by_recipient) == ["guardian1@example.no", "guardian2@example.no"]
    email = by_recipient["guardian1@example.no"]
    assert "Foreldremøte 7B" in email["Subject"]
    calendar = _calendar_of(email)
    assert calendar["METHOD"] == "REQUEST"
    vevent = _the_event(calendar)
    assert vevent["UID"] == "m-2026-7b-foreldremote@nor-0301-bjolsen.notify"  # type: ignore[index]
    assert vevent["SEQUENCE"] == 0  # type: ignore[index]
    assert vevent["LOCATION"] == "Rom 204, Bjølsen skole"  # type: ignore[index]
    assert vevent.decoded("DTSTART") == event.data.meeting.starts_at  # type: ignore[attr-defined]

    texts = {message["to"]: message for message in deployment.sms.messages()}
    sms = texts[event.data.recipients[0].phone]
    assert sms["from"] == "Bjolsen"
    assert "Rom 204" in sms["text"]
    assert "18:00" in sms["text"]


async def test_binary_mode_events_are_handled_like_structured_ones(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    event = samples.meeting_created(recipients=[samples.sample_guardian(1, channels=[Channel.EMAIL])])
    async with deployment.running(), EventPublisher(kafka_bootstrap, deployment.topics) as publisher:
        await publisher.publish(event, binary=True)
        await wait_until(lambda: len(deployment.smtp.received) == 1, what="the email")
    assert "Foreldremøte 7B" in deployment.smtp.received[0].message["Subject"]


async def _wait_until_consumed(
    deployment: Deployment, kafka_bootstrap: str, topic: str, partition: int, offset: int
) -> None:
    async def committed_past() -> bool:
        return await committed_offset(kafka_bootstrap, deployment.settings.consumer_group, topic, partition) > offset

    await wait_until(committed_past, what=f"offset {offset} of {topic}[{partition}] to be committed")


async def test_the_same_event_published_twice_is_sent_once_even_after_a_restart(
    deployment_on_each_database: Deployment, kafka_bootstrap: str
) -> None:
    deployment = deployment_on_each_database
    event = samples.meeting_created()
    topic = deployment.topics.meeting_created
    async with EventPublisher(kafka_bootstrap, deployment.topics) as publisher:
        async with deployment.running():
            await publisher.publish(event)
            second = await publisher.publish(event)
            await _wait_until_consumed(deployment, kafka_bootstrap, topic, second.partition, second.offset)
        async with deployment.running():
            third = await publisher.publish(event, binary=True)
            await _wait_until_consumed(deployment, kafka_bootstrap, topic, third.partition, third.offset)

    assert len(deployment.smtp.received) == 2
    assert len(deployment.sms.messages()) == 2


async def test_guardians_without_parental_responsibility_or_blocked_get_nothing_and_are_reported_suppressed(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    event = samples.meeting_created(
        recipients=[
            samples.sample_guardian(1),
            samples.sample_guardian(2, has_parental_responsibility=False),
            samples.sample_guardian(3, blocked=True),
        ]
    )
    async with (
        deployment.running(),
        EventPublisher(kafka_bootstrap, deployment.topics) as publisher,
        TopicReader(kafka_bootstrap, deployment.topics.notification_status) as statuses,
    ):
        await publisher.publish(event)

        async def six_statuses() -> bool:
            return len(await statuses.poll()) >= 6

        await wait_until(six_statuses, what="a status per guardian and channel")

    assert [item.envelope_to for item in deployment.smtp.received] == [["guardian1@example.no"]]
    assert [message["to"] for message in deployment.sms.messages()] == [event.data.recipients[0].phone]
    outcome = {
        (s["data"]["guardian_id"], s["data"]["channel"]): (s["data"]["status"], s["data"].get("reason"))
        for s in statuses.records
    }
    assert outcome == {
        ("g-1001", "email"): ("sent", None),
        ("g-1001", "sms"): ("sent", None),
        ("g-1002", "email"): ("suppressed", "no_parental_responsibility"),
        ("g-1002", "sms"): ("suppressed", "no_parental_responsibility"),
        ("g-1003", "email"): ("suppressed", "blocked_by_school"),
        ("g-1003", "sms"): ("suppressed", "blocked_by_school"),
    }
    status_text = json.dumps(statuses.records)
    for guardian in event.data.recipients:
        assert guardian.name not in status_text
        assert str(guardian.email) not in status_text
        assert str(guardian.phone) not in status_text
    assert all(s["data"].get("language") in (None, "nb") for s in statuses.records)


async def test_a_new_time_is_announced_with_a_higher_sequence_and_a_new_title_alone_is_not(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    guardian = samples.sample_guardian(1, channels=[Channel.EMAIL])
    meeting = samples.sample_meeting()
    moved = meeting.model_copy(
        update={
            "starts_at": meeting.starts_at + timedelta(days=1),
            "ends_at": meeting.ends_at + timedelta(days=1),
        }
    )
    renamed = moved.model_copy(update={"title": "Foreldremøte for 7B"})
    async with deployment.running(), EventPublisher(kafka_bootstrap, deployment.topics) as publisher:
        await publisher.publish(samples.meeting_created(meeting=meeting, recipients=[guardian]))
        await wait_until(lambda: len(deployment.smtp.received) == 1, what="the invitation")
        await publisher.publish(samples.meeting_updated(meeting=moved, recipients=[guardian]))
        await wait_until(lambda: len(deployment.smtp.received) == 2, what="the update")
        renamed_at = await publisher.publish(
            samples.meeting_updated(
                meeting=renamed, recipients=[guardian], time=datetime(2026, 11, 25, 9, 0, tzinfo=samples.OSLO)
            )
        )
        await _wait_until_consumed(
            deployment,
            kafka_bootstrap,
            deployment.topics.meeting_updated,
            renamed_at.partition,
            renamed_at.offset,
        )
        await publisher.publish(samples.meeting_cancelled(meeting=renamed, recipients=[guardian]))
        await wait_until(lambda: len(deployment.smtp.received) == 3, what="the cancellation")

    invitation, update, cancellation = (item.message for item in deployment.smtp.received)
    assert _the_event(_calendar_of(update))["SEQUENCE"] == 1  # type: ignore[index]
    assert _calendar_of(update)["METHOD"] == "REQUEST"
    assert _calendar_of(cancellation)["METHOD"] == "CANCEL"
    assert _the_event(_calendar_of(cancellation))["SEQUENCE"] == 2  # type: ignore[index]
    assert _the_event(_calendar_of(cancellation))["UID"] == _the_event(_calendar_of(invitation))["UID"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (
            b'{"specversion": "1.0", "id": ',
            [("content-type", b"application/cloudevents+json")],
            "malformed_json",
        ),
        (
            b'{"specversion": "1.0", "id": "e-1", "source": "/x", "type": "meeting.created", "data": {}}',
            [],
            "schema_violation",
        ),
        (
            b'{"specversion": "1.0", "id": "e-2", "source": "/x", "type": "meeting.rescheduled", "data": {}}',
            [],
            "unknown_event_type",
        ),
    ],
    ids=["malformed-json", "schema-violation", "unknown-type"],
)
async def test_bad_records_are_dead_lettered_with_a_reason_and_the_service_keeps_going(
    deployment: Deployment, kafka_bootstrap: str, value: bytes, headers: list[tuple[str, bytes]], reason: str
) -> None:
    topic = deployment.topics.meeting_created
    async with (
        deployment.running(),
        EventPublisher(kafka_bootstrap, deployment.topics) as publisher,
        TopicReader(kafka_bootstrap, deployment.topics.dead_letter) as dead_letters,
    ):
        bad = await publisher.publish_raw(
            topic, value, key=b"m-2026-7b-foreldremote", headers=[*headers, ("x-trace", b"t-1")]
        )
        valid = await publisher.publish(
            samples.meeting_created(recipients=[samples.sample_guardian(1, channels=[Channel.SMS])])
        )
        await wait_until(lambda: len(deployment.sms.messages()) == 1, what="the valid event after the bad one")

        async def one_dead_letter() -> bool:
            return len(await dead_letters.poll()) == 1

        await wait_until(one_dead_letter, what="the dead letter")

        # The service commits its own offsets (several events at once): a skipped record must not hold its
        # partition back, so both records end up committed.
        assert (bad.partition, bad.offset + 1) == (valid.partition, valid.offset)  # one meeting, one partition
        await _wait_until_consumed(deployment, kafka_bootstrap, topic, valid.partition, valid.offset)

    letter = dead_letters.records[0]
    assert letter["type"] == "notification.dead-letter"
    assert letter["data"]["reason"] == reason
    assert letter["data"]["original_topic"] == topic
    assert letter["data"]["service"] == "invitations"
    assert base64.b64decode(letter["data"]["original_value_base64"]) == value
    assert {"key": "x-trace", "value_base64": base64.b64encode(b"t-1").decode()} in letter["data"]["original_headers"]
