"""Two admin systems of one school that number their events alike: a CloudEvents id is unique only per `source`,
so the same id from each is two messages, and only the same id from the same source is a repeat (issue 18)."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from notify_digest.runtime import Runtime
from notify_digest.testing import Deployment
from notify_shared import samples
from notify_shared.contract import Channel, DeliveryMode, MessagePosted, Recipient
from notify_shared.testing.kafka import publish_applied

pytestmark = pytest.mark.kafka

OSLO = ZoneInfo("Europe/Oslo")
SHARED_EVENT_ID = "01JE2K7V4N8Q3R5T9W1X6Y0Z2A"
VISMA = "/visma-flyt/0301"
IST = "urn:ist:extens:0301"


def _message(source: str, subject: str, body: str, parent: Recipient, *, urgent: bool) -> MessagePosted:
    event = samples.message_posted(event_id=SHARED_EVENT_ID, urgent=urgent)
    data = event.data.model_copy(update={"subject": subject, "body": body, "recipients": (parent,)})
    return event.model_copy(update={"source": source, "data": data})


def _plain(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def test_urgent_messages_with_the_same_id_from_two_sources_both_go_out_and_a_redelivery_does_not(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    parent = samples.sample_guardian(1, channels=[Channel.EMAIL])
    closed = _message(VISMA, "Skolen er stengt i dag", "Vannlekkasje: skolen holder stengt.", parent, urgent=True)
    bus = _message(IST, "Skolebussen er innstilt", "Bussen kjører ikke i ettermiddag.", parent, urgent=True)
    async with deployment.running():
        # The last one: Kafka delivering the first message again.
        await publish_applied(
            kafka_bootstrap, deployment.topics, deployment.settings.consumer_group, closed, bus, closed
        )

    texts = [_plain(item.message) for item in deployment.smtp.received]
    assert len(texts) == 2
    assert sum("Vannlekkasje" in text for text in texts) == 1
    assert sum("Bussen kjører ikke" in text for text in texts) == 1


async def _run_at(deployment: Deployment, runtime: Runtime, moment: datetime) -> None:
    deployment.clock.set(moment)
    await runtime.runner.run_due()


async def test_digest_messages_with_the_same_id_from_two_sources_are_both_in_the_digest(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    parent = samples.sample_guardian(1, channels=[Channel.EMAIL], delivery_mode=DeliveryMode.DAILY)
    trip = _message(VISMA, "Tur til Sognsvann fredag", "Husk matpakke og gode sko.", parent, urgent=False)
    photos = _message(IST, "Skolefotografering tirsdag", "Fotografen kommer klokka ni.", parent, urgent=False)
    async with deployment.running() as runtime:
        await publish_applied(
            kafka_bootstrap, deployment.topics, deployment.settings.consumer_group, trip, photos, trip
        )
        await _run_at(deployment, runtime, datetime(2026, 12, 4, 17, 0, tzinfo=OSLO))

    (digest,) = [_plain(item.message) for item in deployment.smtp.received]
    assert digest.count("Tur til Sognsvann fredag") == 1
    assert digest.count("Skolefotografering tirsdag") == 1
