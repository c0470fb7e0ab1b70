"""The HTTP SMS channels (Twilio and the generic webhook): request shape and how responses map to errors.

The network is replaced by `httpx.MockTransport`, which answers each request with a scripted response.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from notify_shared.channels import (
    DeliveryError,
    OutgoingSms,
    PermanentDeliveryError,
    SmsChannel,
    TransientDeliveryError,
    TwilioSmsChannel,
    WebhookSmsChannel,
)
from notify_shared.channels.provider_http import retry_after_seconds
from notify_shared.testing.http_providers import Responder, raising
from notify_shared.testing.http_providers import ScriptedProvider as Provider

MakeSms = Callable[..., OutgoingSms]

TWILIO_SID = "AC0123456789abcdef0123456789abcdef"
WEBHOOK_URL = "https://sms-gateway.example.no/v1/messages"


@pytest.fixture
async def open_channel() -> AsyncIterator[Callable[[str, Provider], SmsChannel]]:
    """Builds a Twilio or webhook channel talking to a scripted provider; closes it after the test."""
    channels: list[SmsChannel] = []

    def open_channel(kind: str, provider: Provider) -> SmsChannel:
        channel: SmsChannel
        if kind == "twilio":
            channel = TwilioSmsChannel(
                TWILIO_SID,
                SecretStr("twilio-auth-token"),
                base_url="https://api.twilio.test/",
                transport=provider.transport(),
            )
        else:
            channel = WebhookSmsChannel(
                WEBHOOK_URL, auth_token=SecretStr("gateway-token"), transport=provider.transport()
            )
        channels.append(channel)
        return channel

    yield open_channel
    for channel in channels:
        await channel.aclose()


async def test_twilio_gets_a_form_encoded_message_with_basic_auth_and_returns_its_sid(
    open_channel: Callable[[str, Provider], SmsChannel], make_absence_sms: MakeSms
) -> None:
    provider = Provider(lambda _: httpx.Response(201, json={"sid": "SM9f2c", "status": "queued"}))
    sms = make_absence_sms(7)

    receipt = await open_channel("twilio", provider).send_sms(sms)

    (request,) = provider.requests
    assert request.method == "POST"
    assert str(request.url) == f"https://api.twilio.test/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "To": ["+4790000007"],
        "From": ["HaugenSkole"],
        "Body": [sms.text],
    }
    scheme, credentials = request.headers["Authorization"].split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(credentials).decode() == f"{TWILIO_SID}:twilio-auth-token"
    assert (receipt.provider, receipt.provider_message_id) == ("twilio", "SM9f2c")


async def test_the_webhook_gets_json_with_bearer_token_and_idempotency_key(
    open_channel: Callable[[str, Provider], SmsChannel], make_absence_sms: MakeSms
) -> None:
    provider = Provider(lambda _: httpx.Response(202, json={"id": "gw-551"}))
    sms = make_absence_sms(7)

    receipt = await open_channel("webhook", provider).send_sms(sms)

    (request,) = provider.requests
    assert str(request.url) == WEBHOOK_URL
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer gateway-token"
    assert request.headers["Idempotency-Key"] == "ntf-sms-0007"
    assert json.loads(request.content) == {
        "to": "+4790000007",
        "from": "HaugenSkole",
        "text": sms.text,
        "reference": "ntf-sms-0007",
    }
    assert (receipt.provider, receipt.provider_message_id) == ("webhook", "gw-551")


async def test_the_webhook_without_a_token_sends_no_authorization_and_accepts_an_empty_reply(
    make_absence_sms: MakeSms,
) -> None:
    provider = Provider(lambda _: httpx.Response(204))
    channel = WebhookSmsChannel(WEBHOOK_URL, transport=provider.transport())

    receipt = await channel.send_sms(make_absence_sms(1))
    await channel.aclose()

    assert "Authorization" not in provider.requests[0].headers
    assert receipt.provider_message_id is None


def failing_with(status: int, body: object = None, headers: dict[str, str] | None = None) -> Responder:
    return lambda _: httpx.Response(status, json=body, headers=headers)


@dataclass(frozen=True)
class Outcome:
    respond: Responder
    error: type[DeliveryError]
    reason: str
    retry_after: float | None = None


OUTCOMES = {
    "500": Outcome(failing_with(500), TransientDeliveryError, "http_500"),
    "503 with Retry-After": Outcome(
        failing_with(503, headers={"Retry-After": "30"}), TransientDeliveryError, "http_503", 30.0
    ),
    "429 with Retry-After": Outcome(
        failing_with(429, headers={"Retry-After": "7"}), TransientDeliveryError, "http_429", 7.0
    ),
    "400": Outcome(failing_with(400), PermanentDeliveryError, "http_400"),
    "401": Outcome(failing_with(401), PermanentDeliveryError, "http_401"),
    "read timeout": Outcome(raising(httpx.ReadTimeout), TransientDeliveryError, "http_timeout"),
    "connect timeout": Outcome(raising(httpx.ConnectTimeout), TransientDeliveryError, "http_connect_failed"),
    "connection refused": Outcome(raising(httpx.ConnectError), TransientDeliveryError, "http_connect_failed"),
}


@pytest.mark.parametrize("kind", ["twilio", "webhook"])
@pytest.mark.parametrize("outcome", OUTCOMES.values(), ids=OUTCOMES.keys())
async def test_provider_failures_are_transient_or_permanent_by_status(
    open_channel: Callable[[str, Provider], SmsChannel],
    make_absence_sms: MakeSms,
    kind: str,
    outcome: Outcome,
) -> None:
    channel = open_channel(kind, Provider(outcome.respond))

    with pytest.raises(outcome.error) as failure:
        await channel.send_sms(make_absence_sms(1))

    assert failure.value.reason == outcome.reason
    if isinstance(failure.value, TransientDeliveryError):
        assert failure.value.retry_after == outcome.retry_after


async def test_twilio_error_codes_name_the_reason(
    open_channel: Callable[[str, Provider], SmsChannel], make_absence_sms: MakeSms
) -> None:
    invalid_number = {"code": 21211, "message": "The 'To' number +4790000001 is not valid.", "status": 400}
    too_many = {"code": 20429, "message": "Too Many Requests", "status": 429}
    rejected = open_channel("twilio", Provider(failing_with(400, invalid_number)))
    throttled = open_channel("twilio", Provider(failing_with(429, too_many, {"Retry-After": "3"})))

    with pytest.raises(PermanentDeliveryError) as permanent:
        await rejected.send_sms(make_absence_sms(1))
    with pytest.raises(TransientDeliveryError) as transient:
        await throttled.send_sms(make_absence_sms(1))

    assert permanent.value.reason == "twilio_21211"
    assert "+47" not in str(permanent.value)
    assert (transient.value.reason, transient.value.retry_after) == ("twilio_20429", 3.0)


def test_retry_after_may_be_an_http_date() -> None:
    now = datetime(2025, 10, 14, 7, 0, 0, tzinfo=UTC)

    assert retry_after_seconds("Tue, 14 Oct 2025 07:01:30 GMT", now=lambda: now) == 90.0
    assert retry_after_seconds("Tue, 14 Oct 2025 06:00:00 GMT", now=lambda: now) == 0.0
    assert retry_after_seconds("soon", now=lambda: now) is None
    assert retry_after_seconds("nan", now=lambda: now) is None
    assert retry_after_seconds(None) is None


async def test_sms_logs_name_notifications_but_never_numbers_or_text(
    open_channel: Callable[[str, Provider], SmsChannel],
    make_absence_sms: MakeSms,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG", logger="notify_shared.channels")
    sms = make_absence_sms(3)

    await open_channel("twilio", Provider(lambda _: httpx.Response(201, json={"sid": "SM1"}))).send_sms(sms)
    await open_channel("webhook", Provider(lambda _: httpx.Response(200, json={"id": "g1"}))).send_sms(sms)

    ours = [record for record in caplog.records if record.name.startswith("notify_shared.channels")]
    logged = "\n".join(record.getMessage() for record in ours)
    assert "ntf-sms-0003" in logged
    assert "+4790000003" not in logged
    assert "4790000003" not in logged
    assert "fraværende" not in logged
