"""`POST /sms/inbound/webhook` and `POST /sms/inbound/twilio`: replies to the invitation SMS, from the provider.

Signed like the delivery reports (`notify_shared.delivery_reports.signatures`): the generic JSON form with
`X-Notify-Signature` (HMAC-SHA256 of the body, keyed with `DELIVERY_REPORT_SECRET`), Twilio's form-encoded one
with `X-Twilio-Signature` (keyed with `TWILIO_AUTH_TOKEN`). Without `DELIVERY_REPORT_SECRET` both answer 404.
Thin: authenticate, read the sender and text, hand to `ResponsesService.record_sms_reply`. The text and the
number are never logged.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from notify_responses.runtime import Runtime
from notify_responses.web_requests import SECURITY_HEADERS, runtime_of
from notify_shared.contract.contacts import normalise_phone
from notify_shared.delivery_reports.formats import InvalidReportError, parse_form
from notify_shared.delivery_reports.signatures import (
    NOTIFY_SIGNATURE_HEADER,
    NOTIFY_TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
    notify_signature_matches,
    twilio_signature_matches,
)

WEBHOOK_PATH = "/sms/inbound/webhook"
TWILIO_PATH = "/sms/inbound/twilio"
MAX_BODY_BYTES = 16 * 1024
_EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

router = APIRouter(include_in_schema=False)


class InboundSms(BaseModel):
    """The generic provider's inbound message."""

    id: str = Field(min_length=1, max_length=200, description="The provider's id of the message.")
    from_: str = Field(alias="from", min_length=1, max_length=40, description="The sender's number.")
    text: str = Field(max_length=10_000)


def _json(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=SECURITY_HEADERS)


@router.post(WEBHOOK_PATH)
async def inbound_webhook(request: Request) -> Response:
    runtime = runtime_of(request)
    settings = runtime.settings
    # The SMS gateway's own secret, as for its delivery reports, so no other sender can sign a reply.
    secret = settings.delivery_report_sms_webhook_secret or settings.delivery_report_secret
    if secret is None:
        return _json({"error": "not found"}, 404)
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return _json({"error": "too large"}, 413)
    signed = notify_signature_matches(
        secret.get_secret_value(),
        body,
        request.headers.get(NOTIFY_SIGNATURE_HEADER),
        request.headers.get(NOTIFY_TIMESTAMP_HEADER),
        tolerance=settings.delivery_report_tolerance,
    )
    if not signed:
        runtime.metrics.link_rejected("unsigned_sms")
        return _json({"error": "bad signature"}, 401)
    try:
        message = InboundSms.model_validate(json.loads(body))
    except (ValueError, ValidationError):
        return _json({"error": "not an inbound message: needs id, from and text"}, 400)
    return _json(await _handle(runtime, "webhook", message.id, message.from_, message.text))


@router.post(TWILIO_PATH)
async def inbound_twilio(request: Request) -> Response:
    runtime = runtime_of(request)
    settings = runtime.settings
    enabled = settings.delivery_report_sms_twilio_secret or settings.delivery_report_secret
    if enabled is None or settings.twilio_auth_token is None:
        return _json({"error": "not found"}, 404)
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return _json({"error": "too large"}, 413)
    try:
        params = parse_form(body)
    except InvalidReportError:
        return _json({"error": "not a form-encoded body"}, 400)
    # Twilio signs the URL it was configured with; behind the ingress that is the public one.
    urls = [settings.public_url.rstrip("/") + TWILIO_PATH, str(request.url)]
    token = settings.twilio_auth_token.get_secret_value()
    if not twilio_signature_matches(token, urls, params, request.headers.get(TWILIO_SIGNATURE_HEADER)):
        runtime.metrics.link_rejected("unsigned_sms")
        return _json({"error": "bad signature"}, 401)
    fields = dict(params)
    sid, sender = fields.get("MessageSid") or fields.get("SmsSid"), fields.get("From")
    if not sid or not sender:
        return _json({"error": "needs MessageSid and From"}, 400)
    await _handle(runtime, "twilio", sid, sender, fields.get("Body", ""))
    # An empty TwiML answer: Twilio sends no automatic reply.
    return Response(_EMPTY_TWIML, media_type="application/xml", headers=SECURITY_HEADERS)


async def _handle(runtime: Runtime, provider: str, message_id: str, sender: str, text: str) -> dict[str, Any]:
    phone = normalise_phone(sender)
    service = runtime.service
    if not await runtime.store.first_sight_of_reply(provider, message_id, at=service.now()):
        return {"outcome": "duplicate"}
    if phone is None:
        outcome = await service.record_unknown_sender(text)
    else:
        outcome = await service.record_sms_reply(phone=phone, text=text)
    if outcome.answer is not None:
        runtime.metrics.answered(answer=outcome.answer.value, via="sms", result=outcome.result.value)
    answer: dict[str, Any] = {"outcome": outcome.result.value}
    if outcome.reason is not None:
        answer["reason"] = outcome.reason.value
    if phone is not None and runtime.auto_replier is not None:
        # The reply is recorded (and its event queued) before this: an automatic answer that fails loses nothing.
        auto_reply = await runtime.auto_replier.answer(
            phone=phone, text=text, outcome=outcome, reply_id=f"{provider}:{message_id}"
        )
        answer["auto_reply"] = auto_reply.value if auto_reply is not None else None
    return answer
