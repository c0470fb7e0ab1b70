"""Two schools whose admin systems use the same event, guardian and pupil ids: absence notices and digest items
of one never merge with, replace or reach the other's (issue 18, "High")."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from notify_digest.runtime import Runtime
from notify_digest.testing import Deployment
from notify_shared import samples
from notify_shared.contract import (
    AbsenceNoted,
    Channel,
    CloudEvent,
    DeliveryMode,
    Lesson,
    NotedAbsence,
    Pupil,
    Recipient,
    School,
)
from notify_shared.testing.kafka import publish_applied

pytestmark = pytest.mark.kafka

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 11, 30, 8, 40, tzinfo=OSLO)
FRIDAY_14 = datetime(2026, 12, 4, 14, 0, tzinfo=OSLO)
BJOLSEN = samples.sample_school()
NORDNES = samples.sample_school(id="nor-4601-nordnes", name="Nordnes skole", sms_sender_id="Nordnes")
SHARED_EVENT_ID = "01JDQ5W8M3C8ZK4N2T6Y7B9E0F"
SHARED_PUPIL_ID = "p-77120"
BJOLSEN_PARENT = samples.sample_guardian(1, delivery_mode=DeliveryMode.WEEKLY)
NORDNES_PARENT = samples.sample_guardian(
    1, delivery_mode=DeliveryMode.WEEKLY, email="forelder@nordnes.example.no", phone="+4791111111"
)


def _absence(school: School, pupil_name: str, lesson: str, parent: Recipient) -> AbsenceNoted:
    return AbsenceNoted(
        id=SHARED_EVENT_ID,
        source=samples.SOURCE,
        time=MONDAY,
        data=NotedAbsence(
            school=school,
            pupil=Pupil(pupil_id=SHARED_PUPIL_ID, first_name=pupil_name, class_name="7B"),
            date=date(2026, 11, 30),
            lessons=(Lesson(period=1, subject=lesson),),
            reported_by_guardian=False,
            recipients=(parent,),
        ),
    )


async def _apply(deployment: Deployment, kafka_bootstrap: str, *events: CloudEvent) -> None:
    """Publish events one by one, each stored (its offset committed) before the next."""
    await publish_applied(kafka_bootstrap, deployment.topics, deployment.settings.consumer_group, *events)


async def _run_at(deployment: Deployment, runtime: Runtime, moment: datetime) -> None:
    deployment.clock.set(moment)
    await runtime.runner.run_due()


def _plain(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def test_absences_of_two_schools_with_the_same_ids_stay_apart_in_notices_and_digests(
    deployment_on_each_database: Deployment, kafka_bootstrap: str
) -> None:
    deployment = deployment_on_each_database  # composite keys and row locks behave alike on both
    async with deployment.running() as runtime:
        await _apply(
            deployment,
            kafka_bootstrap,
            _absence(BJOLSEN, "Emma", "Matematikk", BJOLSEN_PARENT),
            _absence(NORDNES, "Jonas", "Kunst og håndverk", NORDNES_PARENT),
        )
        await _run_at(deployment, runtime, MONDAY + timedelta(hours=1))
        await _run_at(deployment, runtime, FRIDAY_14)

    notices = {sms["to"]: sms for sms in deployment.sms.messages()}
    assert sorted(notices) == ["+4790000001", "+4791111111"]
    bjolsen_notice, nordnes_notice = notices["+4790000001"], notices["+4791111111"]
    assert bjolsen_notice["from"] == "Bjolsen"
    assert "Emma" in bjolsen_notice["text"]
    assert "Jonas" not in bjolsen_notice["text"]
    assert "Kunst og håndverk" not in bjolsen_notice["text"]
    assert nordnes_notice["from"] == "Nordnes"
    assert "Jonas" in nordnes_notice["text"]
    assert "Emma" not in nordnes_notice["text"]
    assert "Matematikk" not in nordnes_notice["text"]

    digests = {item.envelope_to[0]: _plain(item.message) for item in deployment.smtp.received}
    assert sorted(digests) == ["forelder@nordnes.example.no", "guardian1@example.no"]
    assert "Emma" in digests["guardian1@example.no"]
    assert "Jonas" not in digests["guardian1@example.no"]
    assert "Jonas" in digests["forelder@nordnes.example.no"]
    assert "Emma" not in digests["forelder@nordnes.example.no"]


async def test_a_message_from_another_school_with_the_same_event_id_is_not_taken_for_a_repeat(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    bjolsen_message = samples.message_posted(event_id=SHARED_EVENT_ID)
    bjolsen_parent = samples.sample_guardian(1, channels=[Channel.EMAIL], delivery_mode=DeliveryMode.DAILY)
    nordnes_parent = bjolsen_parent.model_copy(update={"email": "forelder@nordnes.example.no"})
    bjolsen_message = bjolsen_message.model_copy(
        update={"data": bjolsen_message.data.model_copy(update={"recipients": (bjolsen_parent,)})}
    )
    nordnes_message = bjolsen_message.model_copy(
        update={
            "data": bjolsen_message.data.model_copy(
                update={
                    "school": NORDNES,
                    "subject": "Aktivitetsdag i Nordnesparken",
                    "body": "Ta med matpakke og gode sko.",
                    "recipients": (nordnes_parent,),
                }
            )
        }
    )
    async with deployment.running() as runtime:
        await _apply(deployment, kafka_bootstrap, bjolsen_message, nordnes_message)
        await _run_at(deployment, runtime, datetime(2026, 12, 4, 17, 0, tzinfo=OSLO))

    digests = {item.envelope_to[0]: _plain(item.message) for item in deployment.smtp.received}
    assert sorted(digests) == ["forelder@nordnes.example.no", "guardian1@example.no"]
    assert "Tur til Sognsvann" in digests["guardian1@example.no"]
    assert "Nordnesparken" not in digests["guardian1@example.no"]
    assert "Nordnesparken" in digests["forelder@nordnes.example.no"]
    assert "Sognsvann" not in digests["forelder@nordnes.example.no"]
