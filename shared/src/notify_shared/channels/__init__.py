"""Delivery channels: how a rendered notification reaches a parent (SMTP or an email API, SMS over HTTP, outbox).

`base` holds the contract the delivery core relies on; `notify_shared.wiring` picks channels from settings.
"""

from notify_shared.channels.base import (
    Attachment,
    DeliveryError,
    DeliveryReceipt,
    EmailChannel,
    OutgoingEmail,
    OutgoingSms,
    PermanentDeliveryError,
    SmsChannel,
    TransientDeliveryError,
)
from notify_shared.channels.email_webhook import WebhookEmailChannel
from notify_shared.channels.failover import CircuitBreaker, CircuitState, FailoverSmsChannel
from notify_shared.channels.mime import build_message
from notify_shared.channels.outbox import FileOutbox
from notify_shared.channels.sms_twilio import TwilioSmsChannel
from notify_shared.channels.sms_webhook import WebhookSmsChannel
from notify_shared.channels.smtp import SmtpConfig, SmtpEmailChannel

__all__ = [
    "Attachment",
    "CircuitBreaker",
    "CircuitState",
    "DeliveryError",
    "DeliveryReceipt",
    "EmailChannel",
    "FailoverSmsChannel",
    "FileOutbox",
    "OutgoingEmail",
    "OutgoingSms",
    "PermanentDeliveryError",
    "SmsChannel",
    "SmtpConfig",
    "SmtpEmailChannel",
    "TransientDeliveryError",
    "TwilioSmsChannel",
    "WebhookEmailChannel",
    "WebhookSmsChannel",
    "build_message",
]
