"""The delivery report routes over HTTP, on a real ledger: what a provider sees, what the ledger records, and the
status event and metric that follow."""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from notify_shared.delivery import CollectingStatusSink
from notify_shared.delivery_reports import (
    DeliveryReportReceiver,
    delivery_report_routes,
    notify_signature,
    notify_signature_headers,
)
from notify_shared.delivery_reports.routes import MAX_BODY_BYTES
from notify_shared.delivery_reports.signatures import twilio_signature
from notify_shared.kafka.service_app import build_service_app
from notify_shared.ledger import DeliveryKey, DeliveryLedger, DeliveryStatus
from notify_shared.observability import ServiceMetrics
from notify_shared.settings import ServiceSettings

SECRET = "report-secret-for-tests"
TWILIO_TOKEN = "twilio-auth-token-for-tests"
CALLBACK_URL = "https://invitations.notify.example/delivery-reports/sms/twilio"
EVENT_ID = "01JD8X4K2M7Q9W3E5R6T8Y0U1I"
WEBHOOK = "/delivery-reports/sms/webhook"
TWILIO = "/delivery-reports/sms/twilio"
EMAIL = "/delivery-reports/email"


@dataclass
class Reports:
    """The routes on a real ledger, with the status events and metrics they produce."""

    client: httpx.AsyncClient
    ledger: DeliveryLedger
    sink: CollectingStatusSink
    metrics: ServiceMetrics

    async def sent(
        self, guardian_id: str, *, channel: str = "sms", provider: str = "webhook", reference: str | None = "gw-1"
    ) -> str:
        claim = await self.ledger.begin(
            DeliveryKey("nor-0301-bjolsen", "/visma-flyt/0301", EVENT_ID, guardian_id, channel, "meeting_invitation"),
            source_event_type="meeting.created",
            school_id="nor-0301-bjolsen",
            language="nb",
        )
        await self.ledger.record(
            claim.notification_id,
            DeliveryStatus.SENT,
            provider=provider,
            provider_message_id=reference,
            segments=2 if channel == "sms" else None,
            language="nb",
        )
        return claim.notification_id

    async def post_signed(self, path: str, report: dict[str, Any], *, secret: str = SECRET) -> httpx.Response:
        body = json.dumps(report).encode()
        return await self.client.post(
            path,
            content=body,
            headers={"Content-Type": "application/json", **notify_signature_headers(secret, body)},
        )

    async def post_twilio(self, params: dict[str, str], *, token: str = TWILIO_TOKEN) -> httpx.Response:
        return await self.client.post(
            TWILIO,
            content=urlencode(params).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio_signature(token, CALLBACK_URL, params.items()),
            },
        )

    async def status_of(self, notification_id: str) -> DeliveryStatus:
        record = await self.ledger.get(notification_id)
        assert record is not None
        return record.status

    async def history_of(self, notification_id: str) -> list[DeliveryStatus]:
        (history,) = [h for h in await self.ledger.history(EVENT_ID) if h.delivery.notification_id == notification_id]
        return [change.status for change in history.changes]

    def counted(self, status: str, channel: str = "sms") -> float:
        labels = {
            "service": "invitations",
            "channel": channel,
            "template": "meeting_invitation",
            "language": "nb",
            "status": status,
        }
        return self.metrics.registry.get_sample_value("notify_notifications_total", labels) or 0.0


@pytest.fixture
async def reports(database_url: str) -> AsyncIterator[Reports]:
    ledger = await DeliveryLedger.connect(database_url)
    sink = CollectingStatusSink()
    metrics = ServiceMetrics("invitations", CollectorRegistry())
    receiver = DeliveryReportReceiver(database_url=database_url, status_sink=sink, metrics=metrics)
    await receiver.open()
    routes = delivery_report_routes(
        receiver,
        secrets=dict.fromkeys((WEBHOOK, TWILIO, EMAIL), SecretStr(SECRET)),
        twilio_auth_token=SecretStr(TWILIO_TOKEN),
        status_callback_url=CALLBACK_URL,
    )
    app = AsgiFastStream(KafkaBroker(), asgi_routes=routes)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://invitations:8000") as client:
            yield Reports(client, ledger, sink, metrics)
    finally:
        await receiver.close()
        await ledger.aclose()


async def test_a_signed_delivered_report_marks_the_sms_delivered_and_publishes_its_status(reports: Reports) -> None:
    notification_id = await reports.sent("g-1001", reference="gw-1")

    response = await reports.post_signed(WEBHOOK, {"id": "gw-1", "reference": notification_id, "status": "delivered"})

    assert response.status_code == 200
    assert response.json() == {"outcome": "applied"}
    assert await reports.status_of(notification_id) is DeliveryStatus.DELIVERED
    (report,) = reports.sink.reports
    assert (report.notification_id, report.status, report.reason) == (notification_id, DeliveryStatus.DELIVERED, None)
    assert (report.source_event_id, report.guardian_id, report.school_id) == (EVENT_ID, "g-1001", "nor-0301-bjolsen")
    assert (report.channel.value, report.template, report.language, report.sms_segments) == (
        "sms",
        "meeting_invitation",
        "nb",
        2,
    )
    assert reports.counted("delivered") == 1


async def test_a_numeric_gateway_id_finds_the_sms_whose_receipt_recorded_it_as_text(reports: Reports) -> None:
    notification_id = await reports.sent("g-1001", reference="551")

    response = await reports.post_signed(WEBHOOK, {"id": 551, "status": "delivered"})

    assert response.json() == {"outcome": "applied"}
    assert await reports.status_of(notification_id) is DeliveryStatus.DELIVERED


async def test_a_failed_report_records_the_gateways_error_code_as_the_reason(reports: Reports) -> None:
    notification_id = await reports.sent("g-1001", reference="gw-1")

    response = await reports.post_signed(
        WEBHOOK, {"id": "gw-1", "status": "undelivered", "error_code": "EC_ABSENT_SUBSCRIBER"}
    )

    assert response.json() == {"outcome": "applied"}
    record = await reports.ledger.get(notification_id)
    assert record is not None
    assert (record.status, record.reason) == (DeliveryStatus.FAILED, "webhook_EC_ABSENT_SUBSCRIBER")
    assert [r.reason for r in reports.sink.reports] == ["webhook_EC_ABSENT_SUBSCRIBER"]


SIGNED_BODY = b'{"id": "gw-1", "status": "delivered"}'


@pytest.mark.parametrize(
    "headers_at",
    [
        lambda now: {},
        lambda now: {"X-Notify-Signature": "sha256=" + "0" * 64, "X-Notify-Timestamp": str(now)},
        lambda now: {"X-Notify-Signature": "sha1=whatever", "X-Notify-Timestamp": str(now)},
        lambda now: notify_signature_headers("another-secret", SIGNED_BODY, now=now),
        # Signed, but the body posted differs in one byte: a tampered report.
        lambda now: notify_signature_headers(SECRET, b'{"id": "gw-2", "status": "delivered"}', now=now),
        # The signature of an older scheme, over the body alone, without a timestamp.
        lambda now: {"X-Notify-Signature": "sha256=" + hmac.new(SECRET.encode(), SIGNED_BODY, "sha256").hexdigest()},
        lambda now: {"X-Notify-Signature": notify_signature(SECRET, SIGNED_BODY, now)},
        # A genuine report, captured and played back ten minutes later (the tolerance is five).
        lambda now: notify_signature_headers(SECRET, SIGNED_BODY, now=now - 600),
        # Or signed with a clock far ahead, to stay valid for longer.
        lambda now: notify_signature_headers(SECRET, SIGNED_BODY, now=now + 600),
        # The timestamp changed after signing.
        lambda now: {**notify_signature_headers(SECRET, SIGNED_BODY, now=now), "X-Notify-Timestamp": str(now + 1)},
        lambda now: {**notify_signature_headers(SECRET, SIGNED_BODY, now=now), "X-Notify-Timestamp": "soon"},
    ],
    ids=[
        "missing",
        "zeros",
        "other-algorithm",
        "other-secret",
        "other-body",
        "no-timestamp-signed",
        "no-timestamp-header",
        "replayed-later",
        "from-the-future",
        "timestamp-changed",
        "timestamp-not-a-number",
    ],
)
async def test_a_report_without_a_valid_signature_is_refused_with_401_and_changes_nothing(
    reports: Reports, headers_at: Callable[[int], dict[str, str]]
) -> None:
    notification_id = await reports.sent("g-1001", reference="gw-1")

    response = await reports.client.post(WEBHOOK, content=SIGNED_BODY, headers=headers_at(int(time.time())))

    assert response.status_code == 401
    assert response.json() == {"error": "missing or wrong signature"}
    assert await reports.status_of(notification_id) is DeliveryStatus.SENT
    assert reports.sink.reports == []


async def test_a_report_signed_a_little_before_within_the_tolerance_is_applied(reports: Reports) -> None:
    notification_id = await reports.sent("g-1001", reference="gw-1")
    headers = notify_signature_headers(SECRET, SIGNED_BODY, now=time.time() - 240)

    response = await reports.client.post(WEBHOOK, content=SIGNED_BODY, headers=headers)

    assert response.json() == {"outcome": "applied"}
    assert await reports.status_of(notification_id) is DeliveryStatus.DELIVERED


async def test_a_report_for_a_message_this_service_never_sent_is_answered_and_only_logged_by_id(
    reports: Reports, caplog: pytest.LogCaptureFixture
) -> None:
    notification_id = await reports.sent("g-1001", reference="gw-1")

    with caplog.at_level(logging.INFO, logger="notify_shared.delivery_reports"):
        response = await reports.post_signed(WEBHOOK, {"id": "gw-424242", "status": "delivered"})

    assert response.status_code == 200
    assert response.json() == {"outcome": "unknown"}
    assert await reports.status_of(notification_id) is DeliveryStatus.SENT
    assert reports.sink.reports == []
    assert any("gw-424242" in record.getMessage() for record in caplog.records)


async def test_a_repeated_report_adds_one_history_row_and_one_status_event_in_all(reports: Reports) -> None:
    notification_id = await reports.sent("g-1001", reference="gw-1")
    report = {"id": "gw-1", "status": "delivered"}

    first = await reports.post_signed(WEBHOOK, report)
    second = await reports.post_signed(WEBHOOK, report)

    assert (first.json(), second.json()) == ({"outcome": "applied"}, {"outcome": "repeated"})
    assert await reports.history_of(notification_id) == [
        DeliveryStatus.SENDING,
        DeliveryStatus.SENT,
        DeliveryStatus.DELIVERED,
    ]
    assert len(reports.sink.reports) == 1
    assert reports.counted("delivered") == 1


async def test_steps_on_the_way_and_late_reports_after_delivery_change_nothing(reports: Reports) -> None:
    notification_id = await reports.sent("g-1001", reference="gw-1")
    await reports.post_signed(WEBHOOK, {"id": "gw-1", "status": "delivered"})

    enroute = await reports.post_signed(WEBHOOK, {"id": "gw-1", "status": "enroute"})
    late_failure = await reports.post_signed(WEBHOOK, {"id": "gw-1", "status": "failed"})

    assert (enroute.json(), late_failure.json()) == ({"outcome": "ignored"}, {"outcome": "ignored"})
    assert await reports.status_of(notification_id) is DeliveryStatus.DELIVERED
    assert len(reports.sink.reports) == 1


async def test_a_report_that_overtakes_our_record_of_the_send_asks_the_gateway_to_retry(reports: Reports) -> None:
    claim = await reports.ledger.begin(
        DeliveryKey("nor-0301-bjolsen", "/visma-flyt/0301", EVENT_ID, "g-1001", "sms", "meeting_invitation"),
        source_event_type="meeting.created",
        school_id="nor-0301-bjolsen",
        language="nb",
    )

    response = await reports.post_signed(
        WEBHOOK, {"id": "gw-1", "reference": claim.notification_id, "status": "delivered"}
    )

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert await reports.status_of(claim.notification_id) is DeliveryStatus.SENDING


async def test_twilios_signed_status_callback_marks_the_sms_delivered_without_logging_numbers(
    reports: Reports,
) -> None:
    notification_id = await reports.sent("g-1001", provider="twilio", reference="SM5f1a0c2b9d")
    callback = {
        "AccountSid": "AC0000000000",
        "ApiVersion": "2010-04-01",
        "From": "Bjolsen",
        "To": "+4790000001",
        "MessageSid": "SM5f1a0c2b9d",
        "SmsSid": "SM5f1a0c2b9d",
        "MessageStatus": "delivered",
        "SmsStatus": "delivered",
    }

    response = await reports.post_twilio(callback)

    assert response.status_code == 200
    assert response.json() == {"outcome": "applied"}
    assert await reports.status_of(notification_id) is DeliveryStatus.DELIVERED
    assert [r.status for r in reports.sink.reports] == [DeliveryStatus.DELIVERED]


async def test_twilios_undelivered_callback_fails_the_sms_with_twilios_error_code(reports: Reports) -> None:
    notification_id = await reports.sent("g-1001", provider="twilio", reference="SM5f1a0c2b9d")

    response = await reports.post_twilio(
        {"MessageSid": "SM5f1a0c2b9d", "MessageStatus": "undelivered", "ErrorCode": "30003", "To": "+4790000001"}
    )

    assert response.json() == {"outcome": "applied"}
    record = await reports.ledger.get(notification_id)
    assert record is not None
    assert (record.status, record.reason) == (DeliveryStatus.FAILED, "twilio_30003")


async def test_a_twilio_callback_signed_with_another_token_is_refused(reports: Reports) -> None:
    notification_id = await reports.sent("g-1001", provider="twilio", reference="SM5f1a0c2b9d")

    response = await reports.post_twilio(
        {"MessageSid": "SM5f1a0c2b9d", "MessageStatus": "delivered"}, token="not-the-auth-token"
    )

    assert response.status_code == 401
    assert await reports.status_of(notification_id) is DeliveryStatus.SENT


async def test_a_twilio_callback_is_checked_against_the_url_it_was_sent_to_as_well(reports: Reports) -> None:
    """Without a configured callback URL, the URL rebuilt from the request (behind a TLS proxy) signs it."""
    notification_id = await reports.sent("g-1001", provider="twilio", reference="SM5f1a0c2b9d")
    params = {"MessageSid": "SM5f1a0c2b9d", "MessageStatus": "delivered"}
    seen_from_outside = "https://invitations.notify.example/delivery-reports/sms/twilio?school=bjolsen"

    response = await reports.client.post(
        f"{TWILIO}?school=bjolsen",
        content=urlencode(params).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Host": "invitations.notify.example",
            "X-Forwarded-Proto": "https",
            "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, seen_from_outside, params.items()),
        },
    )

    assert response.json() == {"outcome": "applied"}
    assert await reports.status_of(notification_id) is DeliveryStatus.DELIVERED


async def test_a_bounce_marks_the_email_bounced_by_its_message_id(reports: Reports) -> None:
    message_id = "<0a1b2c3d4e5f60718293a4b5c6@bjolsen.example.no>"
    notification_id = await reports.sent("g-1001", channel="email", provider="smtp", reference=message_id)

    response = await reports.post_signed(
        EMAIL,
        {"message_id": message_id.strip("<>"), "bounce_type": "permanent", "code": "5.1.1"},
    )

    assert response.json() == {"outcome": "applied"}
    record = await reports.ledger.get(notification_id)
    assert record is not None
    assert (record.status, record.reason) == (DeliveryStatus.BOUNCED, "permanent_bounce:5.1.1")
    assert [(r.channel.value, r.status) for r in reports.sink.reports] == [("email", DeliveryStatus.BOUNCED)]
    assert reports.counted("bounced", channel="email") == 1


async def test_a_bounce_may_name_our_notification_id_instead(reports: Reports) -> None:
    notification_id = await reports.sent(
        "g-1001", channel="email", provider="smtp", reference="<0a1b@bjolsen.example.no>"
    )

    response = await reports.post_signed(EMAIL, {"notification_id": notification_id, "bounce_type": "transient"})

    assert response.json() == {"outcome": "applied"}
    record = await reports.ledger.get(notification_id)
    assert record is not None
    assert (record.status, record.reason) == (DeliveryStatus.BOUNCED, "transient_bounce")


async def test_a_malformed_report_is_refused_naming_fields_not_values(
    reports: Reports, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="notify_shared.delivery_reports"):
        response = await reports.post_signed(EMAIL, {"message_id": "kari.nordmann@example.no", "bounce_type": "hard"})

    assert response.status_code == 400
    assert response.json() == {"error": "invalid fields: bounce_type"}
    assert "invalid fields: bounce_type" in caplog.text
    assert "kari" not in caplog.text


async def test_an_oversized_report_is_refused_before_it_is_read(reports: Reports) -> None:
    response = await reports.client.post(WEBHOOK, content=b"x" * (MAX_BODY_BYTES + 1))

    assert response.status_code == 413


async def test_only_post_is_answered(reports: Reports) -> None:
    response = await reports.client.get(WEBHOOK)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


async def test_without_a_secret_the_routes_answer_a_plain_json_404(database_url: str) -> None:
    parts = build_service_app(
        ServiceSettings(database_url=database_url), service="invitations", title="t", description="d"
    )
    body = b'{"id": "gw-1", "status": "delivered"}'

    transport = httpx.ASGITransport(app=parts.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://invitations") as client:
        answers = [
            await client.post(path, content=body, headers=notify_signature_headers("", body))
            for path in (WEBHOOK, TWILIO, EMAIL)
        ]

    assert [(answer.status_code, answer.json()) for answer in answers] == [
        (404, {"error": "delivery reports are not enabled on this route"})
    ] * 3
    assert parts.delivery_reports is None


async def test_each_route_takes_only_its_own_secret_so_the_sms_gateway_cannot_forge_a_bounce(
    database_url: str,
) -> None:
    settings = ServiceSettings(
        database_url=database_url,
        delivery_report_sms_webhook_secret=SecretStr("sms-gateway-secret"),
        delivery_report_email_secret=SecretStr("bounce-processor-secret"),
    )
    parts = build_service_app(settings, service="invitations", title="t", description="d")
    assert parts.delivery_reports is not None
    await parts.delivery_reports.open()
    bounce = json.dumps({"notification_id": "n-1", "bounce_type": "permanent"}).encode()
    sms_report = json.dumps({"id": "gw-1", "status": "delivered"}).encode()
    try:
        transport = httpx.ASGITransport(app=parts.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://invitations") as client:
            forged = await client.post(
                EMAIL, content=bounce, headers=notify_signature_headers("sms-gateway-secret", bounce)
            )
            genuine = await client.post(
                EMAIL, content=bounce, headers=notify_signature_headers("bounce-processor-secret", bounce)
            )
            gateway = await client.post(
                WEBHOOK, content=sms_report, headers=notify_signature_headers("sms-gateway-secret", sms_report)
            )
            twilio = await client.post(
                TWILIO, content=b"MessageSid=SM1", headers=notify_signature_headers("sms-gateway-secret", b"")
            )
    finally:
        await parts.delivery_reports.close()

    assert (forged.status_code, forged.json()) == (401, {"error": "missing or wrong signature"})
    assert (genuine.status_code, genuine.json()) == (200, {"outcome": "unknown"})
    assert (gateway.status_code, gateway.json()) == (200, {"outcome": "unknown"})
    # No secret for the Twilio route, and no DELIVERY_REPORT_SECRET to fall back on: it is off.
    assert twilio.status_code == 404


async def test_twilios_route_takes_twilios_own_signature_without_a_secret_of_ours(database_url: str) -> None:
    settings = ServiceSettings(
        database_url=database_url,
        delivery_report_sms_webhook_secret=SecretStr("sms-gateway-secret"),
        twilio_account_sid="AC123",
        twilio_auth_token=SecretStr(TWILIO_TOKEN),
        sms_status_callback_url=CALLBACK_URL.removesuffix("/twilio"),
    )
    parts = build_service_app(settings, service="invitations", title="t", description="d")
    assert parts.delivery_reports is not None
    await parts.delivery_reports.open()
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    try:
        transport = httpx.ASGITransport(app=parts.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://invitations") as client:
            signed_by_twilio = await client.post(
                TWILIO,
                content=urlencode(params).encode(),
                headers={"X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, CALLBACK_URL, params.items())},
            )
            signed_by_the_gateway = await client.post(
                TWILIO,
                content=urlencode(params).encode(),
                headers=notify_signature_headers("sms-gateway-secret", urlencode(params).encode()),
            )
    finally:
        await parts.delivery_reports.close()

    assert (signed_by_twilio.status_code, signed_by_twilio.json()) == (200, {"outcome": "unknown"})
    assert signed_by_the_gateway.status_code == 401


async def test_the_single_delivery_report_secret_still_serves_every_route(database_url: str) -> None:
    settings = ServiceSettings(database_url=database_url, delivery_report_secret=SecretStr(SECRET))
    parts = build_service_app(settings, service="invitations", title="t", description="d")
    assert parts.delivery_reports is not None
    await parts.delivery_reports.open()
    bounce = json.dumps({"notification_id": "n-1", "bounce_type": "permanent"}).encode()
    try:
        transport = httpx.ASGITransport(app=parts.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://invitations") as client:
            answers = [
                await client.post(path, content=body, headers=notify_signature_headers(SECRET, body))
                for path, body in (
                    (WEBHOOK, b'{"id": "gw-1", "status": "delivered"}'),
                    (TWILIO, b"MessageSid=SM1&MessageStatus=delivered"),
                    (EMAIL, bounce),
                )
            ]
    finally:
        await parts.delivery_reports.close()

    assert [(answer.status_code, answer.json()) for answer in answers] == [(200, {"outcome": "unknown"})] * 3
