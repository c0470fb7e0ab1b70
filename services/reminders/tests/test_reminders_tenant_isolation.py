"""Two schools whose admin systems use the same meeting and guardian ids: neither can change or cancel the
other's reminders (issue 18, "High")."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from notify_reminders.runtime import Runtime
from notify_reminders.testing import Deployment
from notify_shared import samples
from notify_shared.contract import CloudEvent
from notify_shared.testing.kafka import publish_applied

pytestmark = pytest.mark.kafka

OSLO = ZoneInfo("Europe/Oslo")
BJOLSEN = samples.sample_school()
NORDNES = samples.sample_school(id="nor-4601-nordnes", name="Nordnes skole", sms_sender_id="Nordnes")
BJOLSEN_MEETING = samples.sample_meeting()  # Thursday 3 December 2026, 18:00 in Oslo
# Nordnes's own meeting: the same id and the same start, its own title, room and parents.
NORDNES_MEETING = BJOLSEN_MEETING.model_copy(update={"title": "Foreldremøte 5A", "location": "Aula, Nordnes skole"})
BJOLSEN_PARENT = samples.sample_guardian(1)
NORDNES_PARENT = samples.sample_guardian(1, email="forelder@nordnes.example.no", phone="+4791111111")
EMAIL_DUE = datetime(2026, 12, 1, 18, 0, tzinfo=OSLO)
SMS_DUE = datetime(2026, 12, 3, 16, 0, tzinfo=OSLO)


async def _apply(deployment: Deployment, kafka_bootstrap: str, *events: CloudEvent) -> None:
    """Publish events one by one, each applied (its offset committed) before the next."""
    await publish_applied(kafka_bootstrap, deployment.topics, deployment.settings.consumer_group, *events)


async def _fire_at(deployment: Deployment, runtime: Runtime, moment: datetime) -> None:
    deployment.clock.set(moment)
    await runtime.runner.fire_due()


async def test_another_schools_update_and_cancellation_with_the_same_ids_leave_this_schools_reminders_alone(
    deployment_on_each_database: Deployment, kafka_bootstrap: str
) -> None:
    deployment = deployment_on_each_database  # composite keys and row locks behave alike on both
    async with deployment.running() as runtime:
        await _apply(
            deployment,
            kafka_bootstrap,
            samples.meeting_created(school=BJOLSEN, meeting=BJOLSEN_MEETING, recipients=[BJOLSEN_PARENT]),
            samples.meeting_updated(school=NORDNES, meeting=NORDNES_MEETING, recipients=[NORDNES_PARENT]),
        )
        await _fire_at(deployment, runtime, EMAIL_DUE)
        await _apply(
            deployment,
            kafka_bootstrap,
            samples.meeting_cancelled(school=NORDNES, meeting=NORDNES_MEETING, recipients=[NORDNES_PARENT]),
        )
        await _fire_at(deployment, runtime, SMS_DUE)

    emails = {item.envelope_to[0]: item.message for item in deployment.smtp.received}
    assert sorted(emails) == ["forelder@nordnes.example.no", "guardian1@example.no"]
    bjolsen_email = emails["guardian1@example.no"]
    assert "Foreldremøte 7B" in bjolsen_email["Subject"]
    bjolsen_text = bjolsen_email.get_body(("plain",))
    assert bjolsen_text is not None
    assert "Rom 204" in bjolsen_text.get_content()
    assert "Nordnes" not in bjolsen_text.get_content()
    nordnes_email = emails["forelder@nordnes.example.no"]
    assert "Foreldremøte 5A" in nordnes_email["Subject"]
    # Nordnes cancelled its meeting before the SMS were due: Bjølsen's parent still gets theirs, from Bjølsen.
    assert [(sms["to"], sms["from"]) for sms in deployment.sms.messages()] == [("+4790000001", "Bjolsen")]
