"""Two schools whose admin systems use the same meeting and guardian ids: neither can read, change or cancel the
other's meeting through the invitations service (issue 18, "High")."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from icalendar import Calendar

from notify_invitations.meeting_states import MeetingStateStore
from notify_invitations.testing import Deployment
from notify_shared import samples
from notify_shared.contract import Channel
from notify_shared.ledger import OutdatedTableError, create_engine
from notify_shared.testing.kafka import EventPublisher, TopicReader
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka

BJOLSEN = samples.sample_school()
NORDNES = samples.sample_school(id="nor-4601-nordnes", name="Nordnes skole", sms_sender_id="Nordnes")
SHARED_MEETING_ID = "m-2026-7b-foreldremote"
BJOLSEN_PARENT = samples.sample_guardian(1, channels=[Channel.EMAIL])
# The same guardian id in the other school's admin system, with that school's own parent's address.
NORDNES_PARENT = samples.sample_guardian(1, channels=[Channel.EMAIL], email="forelder@nordnes.example.no")


def _on(day: int) -> datetime:
    return datetime(2026, 11, day, 9, 0, tzinfo=samples.OSLO)


def _calendar_event(message: EmailMessage) -> tuple[str, int, str]:
    """(METHOD, SEQUENCE, UID) of the email's calendar file."""
    part = next(part for part in message.walk() if part.get_content_type() == "text/calendar")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    calendar = Calendar.from_ical(payload)
    event = next(iter(calendar.walk("VEVENT")))
    return str(calendar["METHOD"]), int(str(event["SEQUENCE"])), str(event["UID"])


def _text_of(message: EmailMessage) -> str:
    return "\n".join(
        str(part.get_content()) for part in message.walk() if part.get_content_type() in ("text/plain", "text/html")
    )


async def test_another_schools_update_and_cancellation_with_the_same_ids_never_touch_this_schools_meeting(
    deployment_on_each_database: Deployment, kafka_bootstrap: str
) -> None:
    deployment = deployment_on_each_database  # composite keys and row locks behave alike on both
    bjolsen_meeting = samples.sample_meeting(meeting_id=SHARED_MEETING_ID)
    nordnes_meeting = samples.sample_meeting(
        meeting_id=SHARED_MEETING_ID,
        title="Foreldremøte 5A",
        location="Aula, Nordnes skole",
        starts_at=bjolsen_meeting.starts_at + timedelta(days=2),
        ends_at=bjolsen_meeting.ends_at + timedelta(days=2),
    )
    moved = bjolsen_meeting.model_copy(
        update={
            "starts_at": bjolsen_meeting.starts_at + timedelta(days=1),
            "ends_at": bjolsen_meeting.ends_at + timedelta(days=1),
        }
    )
    sent = deployment.smtp.received
    async with deployment.running(), EventPublisher(kafka_bootstrap, deployment.topics) as publisher:
        await publisher.publish(
            samples.meeting_created(school=BJOLSEN, meeting=bjolsen_meeting, recipients=[BJOLSEN_PARENT], time=_on(20))
        )
        await wait_until(lambda: len(sent) == 1, what="Bjølsen's invitation")
        # Nordnes's events are dated after Bjølsen's coming update: shared state would make that update stale.
        await publisher.publish(
            samples.meeting_updated(school=NORDNES, meeting=nordnes_meeting, recipients=[NORDNES_PARENT], time=_on(26))
        )
        await wait_until(lambda: len(sent) == 2, what="Nordnes's first news of its meeting")
        await publisher.publish(
            samples.meeting_cancelled(
                school=NORDNES, meeting=nordnes_meeting, recipients=[NORDNES_PARENT], time=_on(27)
            )
        )
        await wait_until(lambda: len(sent) == 3, what="Nordnes's cancellation")
        await publisher.publish(
            samples.meeting_updated(school=BJOLSEN, meeting=moved, recipients=[BJOLSEN_PARENT], time=_on(24))
        )
        await wait_until(lambda: len(sent) == 4, what="Bjølsen's update, after Nordnes cancelled its own meeting")

    to_bjolsen = [item.message for item in sent if item.envelope_to == [str(BJOLSEN_PARENT.email)]]
    to_nordnes = [item.message for item in sent if item.envelope_to == [str(NORDNES_PARENT.email)]]
    bjolsen_uid = f"{SHARED_MEETING_ID}@{BJOLSEN.id}.notify"
    nordnes_uid = f"{SHARED_MEETING_ID}@{NORDNES.id}.notify"
    # Bjølsen's parent: the invitation and the move, as if Nordnes did not exist.
    assert [_calendar_event(message) for message in to_bjolsen] == [
        ("REQUEST", 0, bjolsen_uid),
        ("REQUEST", 1, bjolsen_uid),
    ]
    assert all("Nordnes" not in _text_of(message) and "Aula" not in _text_of(message) for message in to_bjolsen)
    # Nordnes's parent: its "update" is the first news of Nordnes's own meeting, so an invitation, then the
    # cancellation; never Bjølsen's time or room as "the earlier" one.
    assert [_calendar_event(message) for message in to_nordnes] == [
        ("REQUEST", 0, nordnes_uid),
        ("CANCEL", 1, nordnes_uid),
    ]
    assert all("Rom 204" not in _text_of(message) and "Bjølsen" not in _text_of(message) for message in to_nordnes)


async def test_an_event_dated_beyond_the_margin_is_dead_lettered_and_later_real_updates_still_count(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    meeting = samples.sample_meeting()
    moved = meeting.model_copy(
        update={"starts_at": meeting.starts_at + timedelta(days=1), "ends_at": meeting.ends_at + timedelta(days=1)}
    )
    far_future = samples.meeting_updated(
        meeting=moved, recipients=[BJOLSEN_PARENT], time=datetime(2199, 1, 1, tzinfo=samples.OSLO)
    )
    sent = deployment.smtp.received
    async with (
        deployment.running(),
        EventPublisher(kafka_bootstrap, deployment.topics) as publisher,
        TopicReader(kafka_bootstrap, deployment.topics.dead_letter) as dead_letters,
    ):
        await publisher.publish(samples.meeting_created(meeting=meeting, recipients=[BJOLSEN_PARENT], time=_on(20)))
        await wait_until(lambda: len(sent) == 1, what="the invitation")
        await publisher.publish(far_future)

        async def one_dead_letter() -> bool:
            return len(await dead_letters.poll()) == 1

        await wait_until(one_dead_letter, what="the dead letter of the event dated 2199")
        await publisher.publish(samples.meeting_updated(meeting=moved, recipients=[BJOLSEN_PARENT], time=_on(24)))
        await wait_until(lambda: len(sent) == 2, what="the real update")

    letter = dead_letters.records[0]["data"]
    assert (letter["reason"], letter["source_event_id"]) == ("time_in_future", far_future.id)
    assert "2199-01-01" in letter["errors"][0]
    assert _calendar_event(sent[1].message)[:2] == ("REQUEST", 1)


async def test_a_database_from_before_school_scoped_keys_stops_start_up_naming_every_old_table(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'invitations.db'}")
    try:
        async with engine.begin() as connection:
            # The two tables as the version before school-scoped keys made them (the columns that matter here).
            await connection.exec_driver_sql(
                "CREATE TABLE invitation_meeting_states (meeting_id VARCHAR(200) PRIMARY KEY, school_id VARCHAR(200))"
            )
            await connection.exec_driver_sql(
                "CREATE TABLE invitation_decisions (event_id VARCHAR(200) PRIMARY KEY, meeting_id VARCHAR(200))"
            )
        with pytest.raises(OutdatedTableError) as refused:
            await MeetingStateStore(engine).create_schema()
    finally:
        await engine.dispose()

    assert str(refused.value) == (
        "table invitation_decisions was made by an older version: its primary key is (event_id), this version needs"
        " (school_id, source, event_id); table invitation_meeting_states was made by an older version: its primary"
        " key is (meeting_id), this version needs (school_id, meeting_id);"
        " see 'Upgrading the database' in docs/operations.md"
    )
