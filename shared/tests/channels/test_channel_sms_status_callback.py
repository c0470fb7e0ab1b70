"""With SMS_STATUS_CALLBACK_URL set, each SMS asks its provider to report its fate to this service."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
from pydantic import SecretStr

from notify_shared.channels import OutgoingSms, TwilioSmsChannel, WebhookSmsChannel

CALLBACK = "https://invitations.notify.example/delivery-reports/sms/"
MakeSms = Callable[..., OutgoingSms]


def _recording(requests: list[httpx.Request], answer: httpx.Response) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return answer

    return httpx.MockTransport(handle)


async def test_twilio_is_given_the_status_callback_url(make_absence_sms: MakeSms) -> None:
    requests: list[httpx.Request] = []
    channel = TwilioSmsChannel(
        "AC0123",
        SecretStr("token"),
        status_callback_url=CALLBACK + "twilio",
        transport=_recording(requests, httpx.Response(201, json={"sid": "SM1"})),
    )

    await channel.send_sms(make_absence_sms(3))
    await channel.aclose()

    assert parse_qs(requests[0].content.decode())["StatusCallback"] == [CALLBACK + "twilio"]


async def test_the_webhook_is_given_the_status_callback_url(make_absence_sms: MakeSms) -> None:
    requests: list[httpx.Request] = []
    channel = WebhookSmsChannel(
        "https://sms-gateway.example.no/v1/messages",
        status_callback_url=CALLBACK + "webhook",
        transport=_recording(requests, httpx.Response(202, json={"id": "gw-1"})),
    )

    await channel.send_sms(make_absence_sms(3))
    await channel.aclose()

    payload = json.loads(requests[0].content)
    assert payload["status_callback_url"] == CALLBACK + "webhook"
    assert payload["reference"] == "ntf-sms-0003"


async def test_without_the_setting_no_report_is_asked_for(make_absence_sms: MakeSms) -> None:
    requests: list[httpx.Request] = []
    twilio = TwilioSmsChannel(
        "AC0123", SecretStr("token"), transport=_recording(requests, httpx.Response(201, json={"sid": "SM1"}))
    )
    webhook = WebhookSmsChannel(
        "https://sms-gateway.example.no/v1/messages", transport=_recording(requests, httpx.Response(204))
    )

    await twilio.send_sms(make_absence_sms(1))
    await webhook.send_sms(make_absence_sms(2))
    await twilio.aclose()
    await webhook.aclose()

    assert "StatusCallback" not in parse_qs(requests[0].content.decode())
    assert "status_callback_url" not in json.loads(requests[1].content)
