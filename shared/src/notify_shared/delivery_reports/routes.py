"""`POST /delivery-reports/sms/{webhook,twilio}` and `POST /delivery-reports/email` on the service's HTTP port.

Plain ASGI apps, mounted next to `/healthz` in FastStream's `AsgiFastStream` (which matches paths exactly, hence
one route per provider). Every request is authenticated before its body is read as a report:

- `X-Notify-Timestamp` and `X-Notify-Signature: sha256=<hex>`: HMAC-SHA256 of the timestamp and the raw body,
  keyed with the route's own secret (`DELIVERY_REPORT_SMS_WEBHOOK_SECRET`, `…_SMS_TWILIO_SECRET`,
  `…_EMAIL_SECRET`), else `DELIVERY_REPORT_SECRET`; one secret per route means the SMS gateway cannot sign an
  email bounce;
- on the Twilio route, instead, Twilio's own `X-Twilio-Signature`, keyed with `TWILIO_AUTH_TOKEN`.

Answers: 200 `{"outcome": ...}` for a report read (applied, repeated, ignored or unknown: nothing more to do for
the sender); 503 with `Retry-After` when it came before our record of the send, or before the service was ready;
400 for a body that is not a report; 401 for a missing or wrong signature or a timestamp outside the tolerance;
404 for a route that has no secret; 405, 413.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from faststream.asgi import AsgiResponse
from faststream.asgi.types import ASGIApp, Receive, Scope, Send
from pydantic import SecretStr

from notify_shared.delivery_reports.formats import (
    InvalidReportError,
    ProviderReport,
    parse_email_bounce,
    parse_form,
    parse_twilio_report,
    parse_webhook_report,
)
from notify_shared.delivery_reports.receiver import DeliveryReportReceiver, ReceiverNotReadyError
from notify_shared.delivery_reports.signatures import notify_signature_matches, twilio_signature_matches
from notify_shared.ledger.provider_reports import ReportOutcome
from notify_shared.settings import ServiceSettings

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
"""A report is a few hundred bytes; anything much larger is refused before it is read whole."""
RETRY_AFTER_SECONDS = 5

SMS_WEBHOOK_PATH = "/delivery-reports/sms/webhook"
SMS_TWILIO_PATH = "/delivery-reports/sms/twilio"
EMAIL_PATH = "/delivery-reports/email"

Headers = Mapping[str, str]
Authenticate = Callable[[Scope, Headers, bytes], bool]
Parse = Callable[[bytes], ProviderReport]


@dataclass(frozen=True)
class _Answer:
    status: int
    body: dict[str, str]
    headers: Mapping[str, str] | None = None


class _TooLargeError(Exception):
    pass


class ReportEndpoint:
    """One route: authenticate, parse, hand to the receiver, answer in JSON."""

    def __init__(self, *, receiver: DeliveryReportReceiver, authenticate: Authenticate, parse: Parse) -> None:
        self._receiver = receiver
        self._authenticate = authenticate
        self._parse = parse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = await self._answer(scope, receive)
        headers = {"Content-Type": "application/json", **(answer.headers or {})}
        await AsgiResponse(json.dumps(answer.body).encode(), answer.status, headers)(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive) -> _Answer:
        if scope["method"] != "POST":
            return _Answer(405, {"error": "method not allowed"}, {"Allow": "POST"})
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        try:
            body = await _read_body(receive, _declared_length(headers))
        except _TooLargeError:
            return _Answer(413, {"error": "report too large"})
        if not self._authenticate(scope, headers, body):
            logger.warning("delivery report refused on %s: missing or wrong signature", scope["path"])
            return _Answer(401, {"error": "missing or wrong signature"})
        try:
            report = self._parse(body)
        except InvalidReportError as error:
            logger.warning("delivery report refused on %s: %s", scope["path"], error.reason)
            return _Answer(400, {"error": error.reason})
        return await self._apply(scope, report)

    async def _apply(self, scope: Scope, report: ProviderReport) -> _Answer:
        retry_later = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        try:
            outcome = await self._receiver.receive(report)
        except ReceiverNotReadyError:
            return _Answer(503, {"error": "not ready"}, retry_later)
        except Exception:
            # The database failed (a status event Kafka refuses is kept by the receiver, not raised): the provider
            # sends the report again later.
            logger.exception("delivery report on %s from %s failed", scope["path"], report.provider)
            return _Answer(500, {"error": "internal error"})
        if outcome is ReportOutcome.NOT_SENT_YET:
            # Our record of the send is a moment behind the provider: a sender that retries will find it.
            return _Answer(503, {"outcome": outcome.value}, retry_later)
        return _Answer(200, {"outcome": outcome.value})


def route_secrets(settings: ServiceSettings) -> dict[str, SecretStr | None]:
    """Each route's signing secret: its own setting, else `DELIVERY_REPORT_SECRET`, else None (the route is off)."""
    fallback = settings.delivery_report_secret
    return {
        SMS_WEBHOOK_PATH: settings.delivery_report_sms_webhook_secret or fallback,
        SMS_TWILIO_PATH: settings.delivery_report_sms_twilio_secret or fallback,
        EMAIL_PATH: settings.delivery_report_email_secret or fallback,
    }


async def _route_off(scope: Scope, receive: Receive, send: Send) -> None:
    body = {"error": "delivery reports are not enabled on this route"}
    await AsgiResponse(json.dumps(body).encode(), 404, {"Content-Type": "application/json"})(scope, receive, send)


def delivery_report_routes(
    receiver: DeliveryReportReceiver | None,
    *,
    secrets: Mapping[str, SecretStr | None],
    twilio_auth_token: SecretStr | None = None,
    status_callback_url: str | None = None,
    tolerance: timedelta = timedelta(minutes=5),
) -> list[tuple[str, ASGIApp]]:
    """The three routes, for `AsgiFastStream(asgi_routes=...)`; `secrets` by path (see `route_secrets`).

    A route without a secret, or every route when there is no `receiver`, answers a JSON 404.
    """

    def signed_with(key: str) -> Authenticate:
        def shared_secret(scope: Scope, headers: Headers, body: bytes) -> bool:
            return notify_signature_matches(
                key, body, headers.get("x-notify-signature"), headers.get("x-notify-timestamp"), tolerance=tolerance
            )

        return shared_secret

    def twilio_or_shared_secret(key: str | None) -> Authenticate:
        shared_secret = signed_with(key) if key is not None else None

        def authenticate(scope: Scope, headers: Headers, body: bytes) -> bool:
            if shared_secret is not None and shared_secret(scope, headers, body):
                return True  # e.g. a relay that forwards Twilio's callbacks signed with our secret
            if twilio_auth_token is None:
                return False
            urls = [url for url in (status_callback_url, _request_url(scope, headers)) if url]
            try:
                params = parse_form(body)
            except InvalidReportError:
                return False
            return twilio_signature_matches(
                twilio_auth_token.get_secret_value(), urls, params, headers.get("x-twilio-signature")
            )

        return authenticate

    def twilio_report(body: bytes) -> ProviderReport:
        return parse_twilio_report(parse_form(body))

    def key_of(path: str) -> str | None:
        secret = secrets.get(path)
        return None if secret is None else secret.get_secret_value()

    # Each route's authentication, or None for a route that is off. Twilio's route also works on the Twilio auth
    # token alone, once delivery reports are on at all.
    webhook_key, twilio_key, email_key = key_of(SMS_WEBHOOK_PATH), key_of(SMS_TWILIO_PATH), key_of(EMAIL_PATH)
    endpoints: list[tuple[str, Authenticate | None, Parse]] = [
        (SMS_WEBHOOK_PATH, signed_with(webhook_key) if webhook_key else None, parse_webhook_report),
        (
            SMS_TWILIO_PATH,
            twilio_or_shared_secret(twilio_key) if twilio_key or twilio_auth_token else None,
            twilio_report,
        ),
        (EMAIL_PATH, signed_with(email_key) if email_key else None, parse_email_bounce),
    ]
    routes: list[tuple[str, ASGIApp]] = []
    for path, authenticate, parse in endpoints:
        if receiver is None or authenticate is None:
            routes.append((path, _route_off))
        else:
            routes.append((path, ReportEndpoint(receiver=receiver, authenticate=authenticate, parse=parse)))
    return routes


def _request_url(scope: Scope, headers: Headers) -> str | None:
    # The URL as the sender called it, as far as the service can tell behind a proxy. Only used to check a
    # signature made with a secret the sender cannot know without the auth token, so trusting the headers is safe.
    host = headers.get("x-forwarded-host") or headers.get("host")
    if not host:
        return None
    scheme = headers.get("x-forwarded-proto") or scope.get("scheme", "http")
    path = scope.get("root_path", "") + scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scheme}://{host}{path}" + (f"?{query}" if query else "")


def _declared_length(headers: Headers) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None


async def _read_body(receive: Callable[[], Awaitable[Mapping[str, object]]], declared: int | None) -> bytes:
    if declared is not None and declared > MAX_BODY_BYTES:
        raise _TooLargeError
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        if isinstance(chunk, bytes) and chunk:
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _TooLargeError
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
