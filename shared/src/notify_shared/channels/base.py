"""The contract between the delivery core and the channels that carry emails and SMS.

A channel takes one fully rendered message and either returns a `DeliveryReceipt` or raises a `DeliveryError`
that says whether trying again can help. Retrying, backoff and bookkeeping live in `notify_shared.delivery`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Attachment:
    """A file sent with an email, e.g. the `.ics` of a meeting invitation.

    `content_type` is a full MIME type with parameters, e.g. `text/calendar; method=REQUEST; charset=UTF-8`.
    """

    filename: str
    content_type: str
    data: bytes = field(repr=False)


# Personal fields are left out of repr() so that an accidental `logger.info("%r", msg)` leaks only ids.
@dataclass(frozen=True, kw_only=True)
class OutgoingEmail:
    """One rendered email to one guardian.

    `notification_id` is stable per notification, so a resend has the same Message-ID and outbox file name.
    `headers` adds or replaces headers (for instance Message-ID); it may not touch address or MIME headers.
    """

    to: str = field(repr=False)
    subject: str = field(repr=False)
    text: str = field(repr=False)
    html: str = field(repr=False)
    sender: str
    reply_to: str | None = field(default=None, repr=False)
    attachments: tuple[Attachment, ...] = field(default=(), repr=False)
    headers: Mapping[str, str] = field(default_factory=dict)
    notification_id: str


@dataclass(frozen=True, kw_only=True)
class OutgoingSms:
    """One rendered SMS to one guardian; `sender_id` is the school's alphanumeric sender (≤ 11 characters)."""

    to_e164: str = field(repr=False)
    sender_id: str
    text: str = field(repr=False)
    notification_id: str


@dataclass(frozen=True)
class DeliveryReceipt:
    """Proof that a provider accepted a message; `provider_message_id` is its reference, when it gives one."""

    provider: str
    provider_message_id: str | None


class DeliveryError(Exception):
    """A message was not accepted.

    `reason` is a short code such as `smtp_550` or `http_429`. It is safe to log and to put in status events
    as it never holds addresses, numbers or message text (a provider's own wording may, so that is dropped).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientDeliveryError(DeliveryError):
    """Sending again later may work; `retry_after` is the wait in seconds that the provider asked for."""

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float | None = None,
        http_status: int | None = None,
        slow_down: bool = False,
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.http_status = http_status
        """The provider's HTTP status, when it answered with one (the reason may carry its own error code)."""
        self.slow_down = slow_down
        """The provider refused for load, not for this message (HTTP 429, SMTP 421): every send would fail alike,
        so the whole channel waits (`notify_shared.channels.throttle`)."""


class PermanentDeliveryError(DeliveryError):
    """Sending the same message again would fail alike (unknown mailbox, invalid number, rejected request)."""


class EmailChannel(Protocol):
    """Something that sends email. Implementations must be safe to call concurrently."""

    name: str

    async def send_email(self, message: OutgoingEmail) -> DeliveryReceipt:
        """Hand the email to the provider; raises `TransientDeliveryError` or `PermanentDeliveryError`."""
        ...

    async def aclose(self) -> None:
        """Release connections; the channel must not be used afterwards."""
        ...


class SmsChannel(Protocol):
    """Something that sends SMS. Implementations must be safe to call concurrently."""

    name: str

    async def send_sms(self, message: OutgoingSms) -> DeliveryReceipt:
        """Hand the SMS to the provider; raises `TransientDeliveryError` or `PermanentDeliveryError`."""
        ...

    async def aclose(self) -> None:
        """Release connections; the channel must not be used afterwards."""
        ...
