"""What becomes of a delivery report when something behind the route fails. The database gone: the provider is
answered 500 (and sends the report again later), told nothing about why. Kafka refusing the status event: the
status is applied and the event kept in the database, published once Kafka is back, as the dispatcher's are."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
import sqlalchemy as sa
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from notify_shared.contract import NotificationStatusReport
from notify_shared.delivery import CollectingStatusSink, StatusSink
from notify_shared.delivery.status_backlog import StatusBacklog
from notify_shared.delivery_reports import DeliveryReportReceiver, delivery_report_routes, notify_signature_headers
from notify_shared.kafka.outbound import KafkaStatusSink
from notify_shared.ledger import DeliveryKey, DeliveryLedger, DeliveryStatus
from notify_shared.testing.databases import fresh_postgres_database

SECRET = "report-secret-for-tests"
WEBHOOK = "/delivery-reports/sms/webhook"
EVENT_ID = "01JD8X4K2M7Q9W3E5R6T8Y0U1I"


@dataclass
class KafkaComesBack:
    """The service's status publisher: Kafka refuses (a real producer that has no broker) until `back` is set."""

    back: bool = False
    away: StatusSink = field(
        default_factory=lambda: KafkaStatusSink(
            KafkaBroker("127.0.0.1:9").publisher("notify.notification.status"), service="invitations"
        )
    )
    published: CollectingStatusSink = field(default_factory=CollectingStatusSink)

    async def publish_status(self, report: NotificationStatusReport) -> None:
        await (self.published if self.back else self.away).publish_status(report)


async def sent_sms(ledger: DeliveryLedger, *, reference: str = "gw-7") -> str:
    claim = await ledger.begin(
        DeliveryKey("nor-0301-bjolsen", "/visma-flyt/0301", EVENT_ID, "g-1007", "sms", "meeting_invitation"),
        source_event_type="meeting.created",
        school_id="nor-0301-bjolsen",
        language="nb",
    )
    await ledger.record(claim.notification_id, DeliveryStatus.SENT, provider="webhook", provider_message_id=reference)
    return claim.notification_id


async def post_delivered(client: httpx.AsyncClient, notification_id: str) -> httpx.Response:
    body = json.dumps({"id": "gw-7", "reference": notification_id, "status": "delivered"}).encode()
    return await client.post(
        WEBHOOK,
        content=body,
        headers={"Content-Type": "application/json", **notify_signature_headers(SECRET, body)},
    )


@dataclass
class Service:
    """The report routes of a running service, on its own ledger, publishing through `kafka`."""

    client: httpx.AsyncClient
    ledger: DeliveryLedger
    kafka: KafkaComesBack


@asynccontextmanager
async def service_on(database_url: str) -> AsyncIterator[Service]:
    ledger = await DeliveryLedger.connect(database_url)
    kafka = KafkaComesBack()
    receiver = DeliveryReportReceiver(database_url=database_url, status_sink=kafka)
    await receiver.open()
    app = AsgiFastStream(
        KafkaBroker(), asgi_routes=delivery_report_routes(receiver, secrets={WEBHOOK: SecretStr(SECRET)})
    )
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://invitations:8000") as client:
            yield Service(client, ledger, kafka)
    finally:
        await receiver.close()
        await ledger.aclose()


async def test_a_status_event_kafka_refuses_is_kept_and_published_once_kafka_is_back(database_url: str) -> None:
    async with service_on(database_url) as service:
        notification_id = await sent_sms(service.ledger)

        response = await post_delivered(service.client, notification_id)
        kept_while_away = list(service.kafka.published.reports)
        service.kafka.back = True
        # What the service's retry worker does on each wake-up.
        republished = await StatusBacklog(service.ledger.engine, service.kafka).republish()

    assert response.status_code == 200
    assert kept_while_away == []
    assert republished == 1
    assert [(report.notification_id, report.status) for report in service.kafka.published.reports] == [
        (notification_id, DeliveryStatus.DELIVERED)
    ]


async def test_a_report_sent_again_after_the_status_was_kept_publishes_nothing_twice(database_url: str) -> None:
    async with service_on(database_url) as service:
        notification_id = await sent_sms(service.ledger)
        await post_delivered(service.client, notification_id)
        service.kafka.back = True

        again = await post_delivered(service.client, notification_id)
        await StatusBacklog(service.ledger.engine, service.kafka).republish()

    assert again.status_code == 200
    assert [report.status for report in service.kafka.published.reports] == [DeliveryStatus.DELIVERED]


@pytest.mark.postgres
async def test_the_database_gone_is_answered_500_without_naming_it(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with fresh_postgres_database(postgres_url) as database_url, service_on(database_url) as service:
        service.kafka.back = True
        notification_id = await sent_sms(service.ledger)
        database = make_url(database_url)
        admin = create_async_engine(make_url(postgres_url), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            async with admin.connect() as connection:
                await connection.execute(sa.text(f'DROP DATABASE "{database.database}" WITH (FORCE)'))
        finally:
            await admin.dispose()

        with caplog.at_level(logging.ERROR, logger="notify_shared.delivery_reports"):
            response = await post_delivered(service.client, notification_id)

    assert response.status_code == 500
    assert response.json() == {"error": "internal error"}
    for detail in (str(database.database), str(database.port), str(database.host)):
        assert detail not in response.text
    assert service.kafka.published.reports == []
    # The operator learns which route and provider failed, by the log line the route writes.
    assert any(
        "delivery report on /delivery-reports/sms/webhook from webhook failed" in record.getMessage()
        for record in caplog.records
    )
