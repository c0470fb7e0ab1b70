"""The delivery report formats we accept, each turned into one `ProviderReport`.

- `webhook`: our own SMS webhook gateway's JSON (the counterpart of `notify_shared.channels.sms_webhook`).
- `twilio`: Twilio's message status callback, form-encoded (`MessageSid`, `MessageStatus`, `ErrorCode`, …).
- `email`: a bounce from an MTA or bounce processor, JSON.

Reports carry phone numbers and addresses (Twilio's `To`/`From`, a bounce's recipient); none of it is read here
beyond the ids and codes below, and errors name fields, never values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from notify_shared.ledger.status import DeliveryStatus

SMS_PROVIDERS = ("webhook", "twilio")
"""SMS providers whose reports we read; each name is the provider the channel records in the ledger."""
EMAIL_PROVIDER = "smtp"
"""The provider our SMTP channel records; bounces are matched against its Message-IDs."""

# A provider's error code becomes part of our reason code, so it must be short and plainly a code.
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_TWILIO_SID = re.compile(r"[A-Za-z0-9]{2,64}")

_WEBHOOK_FAILED = frozenset({"failed", "undelivered", "rejected", "expired"})
_TWILIO_FAILED = frozenset({"failed", "undelivered"})


ModelT = TypeVar("ModelT", bound=BaseModel)


class InvalidReportError(ValueError):
    """The request is not a report we can read; `reason` is short and names no value from the request."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ProviderReport:
    """One delivery report, reduced to what the ledger needs: references, the new status and a reason code."""

    provider: str
    provider_message_id: str | None
    notification_id: str | None
    status: DeliveryStatus | None
    """`delivered`, `failed` or `bounced`; None for a step on the way (queued, sent, …) that changes nothing."""
    reason: str | None = None


class WebhookReport(BaseModel):
    """What our SMS webhook gateway POSTs to `/delivery-reports/sms/webhook` when it learns an SMS's fate."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str | int | None = Field(
        default=None, description="The gateway's message id, as in its send response (a string or a number)."
    )
    reference: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Our notification id, as sent in the `reference` field of the SMS.",
    )
    status: str = Field(
        max_length=40,
        description="`delivered`; `failed`, `undelivered`, `rejected` or `expired`; anything else is a step on "
        "the way and changes nothing.",
    )
    error_code: str | int | None = Field(default=None, description="The gateway's or operator's error code.")


class EmailBounce(BaseModel):
    """What a bounce processor POSTs to `/delivery-reports/email` for one bounced email."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    message_id: str | None = Field(
        default=None,
        min_length=3,
        max_length=300,
        description="The Message-ID of the email that bounced (the DSN's Original-Message-ID), with or without <>.",
    )
    notification_id: str | None = Field(
        default=None, min_length=1, max_length=100, description="Our notification id, if the processor knows it."
    )
    bounce_type: Literal["permanent", "transient"] = Field(
        description="`permanent` (hard bounce: no such mailbox) or `transient` (soft bounce, given up after retries)."
    )
    code: str | None = Field(default=None, description="The enhanced status code, e.g. `5.1.1`.")


def parse_webhook_report(body: bytes) -> ProviderReport:
    report = _validated(WebhookReport, body)
    # The channel records a numeric id as text (`notify_shared.channels.sms_webhook`).
    message_id = None if report.id is None or isinstance(report.id, bool) else str(report.id)
    if not message_id and report.reference is None:
        raise InvalidReportError("needs id or reference")
    if message_id is not None and not 0 < len(message_id) <= 200:
        raise InvalidReportError("invalid fields: id")
    state = report.status.strip().lower()
    status: DeliveryStatus | None = None
    reason = None
    if state == "delivered":
        status = DeliveryStatus.DELIVERED
    elif state in _WEBHOOK_FAILED:
        status = DeliveryStatus.FAILED
        code = _code(report.error_code)
        reason = f"webhook_{code}" if code else f"webhook_{state}"
    return ProviderReport("webhook", message_id or None, report.reference, status, reason)


def parse_twilio_report(params: list[tuple[str, str]]) -> ProviderReport:
    """From the form parameters of Twilio's status callback; `SmsSid`/`SmsStatus` are older names of the same."""
    fields = dict(params)
    sid = fields.get("MessageSid") or fields.get("SmsSid")
    state = (fields.get("MessageStatus") or fields.get("SmsStatus") or "").lower()
    if not sid or not _TWILIO_SID.fullmatch(sid):
        raise InvalidReportError("needs MessageSid")
    if not state:
        raise InvalidReportError("needs MessageStatus")
    status: DeliveryStatus | None = None
    reason = None
    if state == "delivered":
        status = DeliveryStatus.DELIVERED
    elif state in _TWILIO_FAILED:
        status = DeliveryStatus.FAILED
        code = _code(fields.get("ErrorCode"))
        reason = f"twilio_{code}" if code else f"twilio_{state}"
    return ProviderReport("twilio", sid, None, status, reason)


def parse_form(body: bytes) -> list[tuple[str, str]]:
    """`application/x-www-form-urlencoded` parameters, in order, duplicates kept (Twilio signs every one)."""
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise InvalidReportError("not a form-encoded body") from None


def parse_email_bounce(body: bytes) -> ProviderReport:
    bounce = _validated(EmailBounce, body)
    if bounce.message_id is None and bounce.notification_id is None:
        raise InvalidReportError("needs message_id or notification_id")
    # The SMTP channel records the Message-ID header as written: `<token@domain>`.
    message_id = f"<{bounce.message_id.strip().strip('<>')}>" if bounce.message_id else None
    code = _code(bounce.code)
    reason = f"{bounce.bounce_type}_bounce:{code}" if code else f"{bounce.bounce_type}_bounce"
    return ProviderReport(EMAIL_PROVIDER, message_id, bounce.notification_id, DeliveryStatus.BOUNCED, reason)


def _validated(model: type[ModelT], body: bytes) -> ModelT:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidReportError("not JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        # Field names only: pydantic's messages would echo the (possibly personal) input.
        fields = sorted({".".join(str(part) for part in issue["loc"]) or "(body)" for issue in error.errors()})
        raise InvalidReportError(f"invalid fields: {', '.join(fields)}") from None


def _code(value: object) -> str | None:
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text if _CODE.fullmatch(text) else None
