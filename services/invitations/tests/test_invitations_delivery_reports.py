"""Delivery reports end to end, on the real broker: an invitation goes out by SMS, the gateway reports it
delivered on the service's HTTP port, and a `delivered` notification.status follows on Kafka."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from notify_invitations.testing import Deployment
from notify_shared import samples
from notify_shared.contract import Channel
from notify_shared.delivery_reports import notify_signature_headers
from notify_shared.testing.kafka import EventPublisher, TopicReader
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka

SECRET = "delivery-report-secret"
CALLBACK_URL = "https://invitations.notify.example/delivery-reports/sms"


def _statuses(records: list[dict[str, Any]], notification_id: str) -> list[str]:
    return [record["data"]["status"] for record in records if record["data"]["notification_id"] == notification_id]


async def test_a_delivery_report_from_the_sms_gateway_becomes_a_delivered_status_on_kafka(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    settings = deployment.settings.model_copy(
        update={"delivery_report_secret": SecretStr(SECRET), "sms_status_callback_url": CALLBACK_URL}
    )
    deployment = Deployment(settings, deployment.smtp, deployment.sms)
    event = samples.meeting_created(recipients=[samples.sample_guardian(1, channels=[Channel.SMS])])

    async with (
        deployment.running() as app,
        EventPublisher(kafka_bootstrap, deployment.topics) as publisher,
        TopicReader(kafka_bootstrap, deployment.topics.notification_status) as statuses,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://invitations") as http,
    ):
        await publisher.publish(event)
        await wait_until(lambda: len(deployment.sms.messages()) == 1, what="the SMS")
        (sms,) = deployment.sms.messages()
        notification_id = sms["reference"]
        assert sms["status_callback_url"] == f"{CALLBACK_URL}/webhook"

        async def sent_is_published() -> bool:
            return _statuses(await statuses.poll(), notification_id) == ["sent"]

        await wait_until(sent_is_published, what="the sent status")

        # The local gateway answered the SMS with {"id": "sms-1"}; its report names that id.
        body = json.dumps({"id": "sms-1", "reference": notification_id, "status": "delivered"}).encode()
        response = await http.post(
            "/delivery-reports/sms/webhook",
            content=body,
            headers={"Content-Type": "application/json", **notify_signature_headers(SECRET, body)},
        )
        assert response.status_code == 200
        assert response.json() == {"outcome": "applied"}

        async def delivered_is_published() -> bool:
            return _statuses(await statuses.poll(), notification_id) == ["sent", "delivered"]

        await wait_until(delivered_is_published, what="the delivered status")

        again = await http.post(
            "/delivery-reports/sms/webhook",
            content=body,
            headers={"Content-Type": "application/json", **notify_signature_headers(SECRET, body)},
        )
        assert again.json() == {"outcome": "repeated"}
        metrics = (await http.get("/metrics")).text

    (delivered,) = [r for r in statuses.records if r["data"]["status"] == "delivered"]
    assert delivered["subject"] == notification_id
    assert delivered["source"] == "/notify/invitations"
    assert delivered["data"]["guardian_id"] == event.data.recipients[0].guardian_id
    assert delivered["data"]["source_event_id"] == event.id
    assert delivered["data"]["channel"] == "sms"
    assert 'status="delivered"' in metrics
