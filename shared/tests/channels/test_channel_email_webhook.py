"""The email API channel: the whole message as JSON with an idempotency key, and how answers map to errors.

The network is replaced by `httpx.MockTransport`, which answers each request with a scripted response.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import re
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from notify_shared.channels import (
    FileOutbox,
    OutgoingEmail,
    PermanentDeliveryError,
    TransientDeliveryError,
    WebhookEmailChannel,
)
from notify_shared.channels.mime import compose_message
from notify_shared.channels.throttle import ThrottledEmailChannel
from notify_shared.settings import ServiceSettings
from notify_shared.testing.http_providers import Responder, raising
from notify_shared.testing.http_providers import ScriptedProvider as EmailApi
from notify_shared.wiring import build_email_channel

MakeEmail = Callable[..., OutgoingEmail]

API_URL = "https://mail-api.example.no/v1/messages"


@pytest.fixture
async def open_channel() -> AsyncIterator[Callable[..., WebhookEmailChannel]]:
    channels: list[WebhookEmailChannel] = []

    def open_channel(api: EmailApi, **options: object) -> WebhookEmailChannel:
        channel = WebhookEmailChannel(API_URL, transport=api.transport(), **options)  # type: ignore[arg-type]
        channels.append(channel)
        return channel

    yield open_channel
    for channel in channels:
        await channel.aclose()


def sent_message(request: httpx.Request) -> EmailMessage:
    raw = base64.b64decode(json.loads(request.content)["raw"], validate=True)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


async def test_the_api_gets_the_whole_message_with_bearer_token_and_idempotency_key(
    open_channel: Callable[..., WebhookEmailChannel], make_invitation: MakeEmail
) -> None:
    api = EmailApi(lambda _: httpx.Response(202, json={"id": "mail-8812"}))
    invitation = make_invitation(4)

    receipt = await open_channel(api, auth_token=SecretStr("api-token")).send_email(invitation)

    (request,) = api.requests
    assert str(request.url) == API_URL
    assert request.headers["Authorization"] == "Bearer api-token"
    assert request.headers["Idempotency-Key"] == "ntf-3f1c9a7e-0004"
    body = json.loads(request.content)
    assert (body["from"], body["to"], body["reference"]) == (
        "no-reply@haugen-skole.no",
        "forelder4@example.no",
        "ntf-3f1c9a7e-0004",
    )
    message = sent_message(request)
    assert message["Message-ID"] == body["message_id"]
    assert message["To"] == "Forelder 4 Nordmann <forelder4@example.no>"
    assert message["Subject"] == invitation.subject
    calendar = next(part for part in message.walk() if part.get_content_type() == "text/calendar")
    assert calendar.get_content().encode() == invitation.attachments[0].data
    assert (receipt.provider, receipt.provider_message_id) == ("email-webhook", "mail-8812")


async def test_the_message_is_byte_for_byte_what_smtp_would_carry(
    open_channel: Callable[..., WebhookEmailChannel], make_invitation: MakeEmail
) -> None:
    api = EmailApi(lambda _: httpx.Response(200))
    invitation = make_invitation(2)

    await open_channel(api).send_email(invitation)

    raw = base64.b64decode(json.loads(api.requests[0].content)["raw"])
    # Only the Date header and the random MIME boundaries differ from one composition to the next.
    assert _comparable(raw) == _comparable(compose_message(invitation).data)


def _comparable(message: bytes) -> bytes:
    boundaries: dict[bytes, bytes] = {}

    def numbered(found: re.Match[bytes]) -> bytes:
        return boundaries.setdefault(found.group(0), b"boundary-%d" % len(boundaries))

    undated = b"\r\n".join(line for line in message.split(b"\r\n") if not line.startswith(b"Date:"))
    return re.sub(rb"=_notify_[0-9a-f]+", numbered, undated)


async def test_a_resend_carries_the_same_idempotency_key_and_message_id(
    open_channel: Callable[..., WebhookEmailChannel], make_invitation: MakeEmail
) -> None:
    api = EmailApi(lambda _: httpx.Response(200))
    channel = open_channel(api)

    first = await channel.send_email(make_invitation(9))
    again = await channel.send_email(make_invitation(9))

    keys = {request.headers["Idempotency-Key"] for request in api.requests}
    message_ids = {json.loads(request.content)["message_id"] for request in api.requests}
    assert keys == {"ntf-3f1c9a7e-0009"}
    assert len(message_ids) == 1
    assert first.provider_message_id == again.provider_message_id == message_ids.pop()


async def test_the_envelope_sender_is_the_configured_bounce_address(
    open_channel: Callable[..., WebhookEmailChannel], make_invitation: MakeEmail
) -> None:
    api = EmailApi(lambda _: httpx.Response(200))

    await open_channel(api, envelope_sender="Skolevarsel <bounces@notify.example.no>").send_email(make_invitation())

    assert json.loads(api.requests[0].content)["from"] == "bounces@notify.example.no"
    assert "Authorization" not in api.requests[0].headers


@pytest.mark.parametrize(
    ("respond", "error", "reason"),
    [
        (lambda _: httpx.Response(500), TransientDeliveryError, "http_500"),
        (lambda _: httpx.Response(429, headers={"Retry-After": "12"}), TransientDeliveryError, "http_429"),
        (lambda _: httpx.Response(422, json={"error": "invalid recipient"}), PermanentDeliveryError, "http_422"),
        (lambda _: httpx.Response(401), PermanentDeliveryError, "http_401"),
        (raising(httpx.ReadTimeout), TransientDeliveryError, "http_timeout"),
        (raising(httpx.ConnectError), TransientDeliveryError, "http_connect_failed"),
    ],
    ids=["500", "429", "422", "401", "read timeout", "connection refused"],
)
async def test_api_failures_are_transient_or_permanent_by_status(
    open_channel: Callable[..., WebhookEmailChannel],
    make_invitation: MakeEmail,
    respond: Responder,
    error: type[Exception],
    reason: str,
) -> None:
    with pytest.raises(error) as failure:
        await open_channel(EmailApi(respond)).send_email(make_invitation())

    assert getattr(failure.value, "reason", None) == reason


async def test_an_address_that_cannot_be_sent_fails_permanently_without_a_request(
    open_channel: Callable[..., WebhookEmailChannel], make_invitation: MakeEmail
) -> None:
    api = EmailApi(lambda _: httpx.Response(200))

    with pytest.raises(PermanentDeliveryError) as failure:
        await open_channel(api).send_email(make_invitation(to="forelder@example.no, other@example.no"))

    assert failure.value.reason == "invalid_address"
    assert api.requests == []


async def test_email_api_logs_name_notifications_but_never_addresses_or_text(
    open_channel: Callable[..., WebhookEmailChannel], make_invitation: MakeEmail, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="notify_shared.channels")

    await open_channel(EmailApi(lambda _: httpx.Response(200))).send_email(make_invitation(3))

    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("notify_shared.channels"))
    assert "ntf-3f1c9a7e-0003" in logged
    assert "forelder3" not in logged
    assert "utviklingssamtale" not in logged


def test_email_webhook_url_chooses_the_api_and_smtp_host_with_it_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SMTP_HOST", raising=False)
    monkeypatch.setenv("EMAIL_WEBHOOK_URL", API_URL)
    settings = ServiceSettings()

    channel = build_email_channel(settings, FileOutbox(tmp_path))
    assert isinstance(channel, ThrottledEmailChannel)
    assert isinstance(channel.inner, WebhookEmailChannel)

    monkeypatch.setenv("SMTP_HOST", "smtp.example.no")
    with pytest.raises(ValidationError, match="SMTP_HOST or EMAIL_WEBHOOK_URL, not both"):
        ServiceSettings()
