"""Twilio as an operator configures it: from the environment, through `build_sms_channel`, to a real HTTP server
on loopback that answers as Twilio's Messages API does."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from notify_shared.channels import FileOutbox, OutgoingSms
from notify_shared.settings import ServiceSettings, load_settings
from notify_shared.wiring import build_sms_channel

ACCOUNT = "AC5f0d7c1e2b3a4f5e6d7c8b9a0f1e2d3c"
AUTH_TOKEN = "twilio-secret-from-the-environment"
CALLBACK = "https://invitations.skole.example/delivery-reports/sms"


@dataclass
class TwilioStandIn:
    """Answers POST …/Messages.json with 201 and a message SID (or with `status`), and keeps what it was sent."""

    url: str = ""
    status: int = 201
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    stand_in = TwilioStandIn()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            stand_in.requests.append(
                {"path": self.path, "authorization": self.headers.get("Authorization"), "form": parse_qs(body)}
            )
            reply = b'{"sid": "SM0001", "status": "queued"}' if stand_in.status < 300 else b'{"code": 20003}'
            self.send_response(stand_in.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, twilio: TwilioStandIn) -> Callable[..., ServiceSettings]:
    """Settings read from the environment as a service reads them, with Twilio as the SMS provider."""

    def read(**extra: str) -> ServiceSettings:
        variables = {
            "SMS_PROVIDER": "twilio",
            "TWILIO_ACCOUNT_SID": ACCOUNT,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_BASE_URL": twilio.url,
            "SMS_TIMEOUT_SECONDS": "5",
            **extra,
        }
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        return load_settings(ServiceSettings)

    return read


def absence_notice() -> OutgoingSms:
    return OutgoingSms(
        to_e164="+4790000042",
        sender_id="HaugenSkole",
        text="Emma er registrert fraværende i dag. Hilsen Haugen skole",
        notification_id="ntf-twilio-0042",
    )


async def test_an_sms_goes_to_the_configured_twilio_account_with_its_credentials_and_callback(
    environment: Callable[..., ServiceSettings], twilio: TwilioStandIn, tmp_path: Any
) -> None:
    settings = environment(SMS_STATUS_CALLBACK_URL=CALLBACK)
    channel = build_sms_channel(settings, FileOutbox(tmp_path / "outbox"))
    try:
        receipt = await channel.send_sms(absence_notice())
    finally:
        await channel.aclose()

    (request,) = twilio.requests
    assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    scheme, credentials = request["authorization"].split(" ")
    assert (scheme, base64.b64decode(credentials).decode()) == ("Basic", f"{ACCOUNT}:{AUTH_TOKEN}")
    assert request["form"]["To"] == ["+4790000042"]
    assert request["form"]["From"] == ["HaugenSkole"]
    # Reports come back to the Twilio route of this service's delivery-report endpoint.
    assert request["form"]["StatusCallback"] == [f"{CALLBACK}/twilio"]
    assert (receipt.provider, receipt.provider_message_id) == ("twilio", "SM0001")
    assert not list((tmp_path / "outbox").glob("**/*")), "nothing went to the file outbox"


async def test_without_a_callback_url_twilio_is_not_asked_for_reports(
    environment: Callable[..., ServiceSettings], twilio: TwilioStandIn, tmp_path: Any
) -> None:
    channel = build_sms_channel(environment(), FileOutbox(tmp_path / "outbox"))
    try:
        await channel.send_sms(absence_notice())
    finally:
        await channel.aclose()
    (request,) = twilio.requests
    assert "StatusCallback" not in request["form"]


async def test_twilio_as_the_second_provider_takes_over_when_the_first_refuses(
    environment: Callable[..., ServiceSettings], twilio: TwilioStandIn, tmp_path: Any
) -> None:
    # The first provider's address refuses connections: nothing listens on port 9 of loopback.
    settings = environment(
        SMS_PROVIDER="webhook",
        SMS_WEBHOOK_URL="http://127.0.0.1:9/sms",
        SMS_FALLBACK_PROVIDER="twilio",
        SMS_BREAKER_FAILURES="1",
    )
    channel = build_sms_channel(settings, FileOutbox(tmp_path / "outbox"))
    try:
        receipt = await channel.send_sms(absence_notice())
    finally:
        await channel.aclose()
    assert receipt.provider == "twilio"
    assert [request["form"]["To"] for request in twilio.requests] == [["+4790000042"]]


def test_twilio_without_its_credentials_stops_start_up_naming_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMS_PROVIDER", "twilio")
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    with pytest.raises(SystemExit):
        load_settings(ServiceSettings)
    assert "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required" in capsys.readouterr().err
