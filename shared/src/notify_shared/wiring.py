"""Building the channels a service sends through from its settings.

With no SMTP server or SMS provider configured, both go to the file outbox, so a newcomer sees real results.
"""

from __future__ import annotations

from notify_shared.channels import (
    EmailChannel,
    FileOutbox,
    SmsChannel,
    SmtpConfig,
    SmtpEmailChannel,
    TwilioSmsChannel,
    WebhookSmsChannel,
)
from notify_shared.settings import ServiceSettings


def build_email_channel(settings: ServiceSettings, outbox: FileOutbox) -> EmailChannel:
    if settings.smtp_host is None:
        return outbox
    return SmtpEmailChannel(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            security=settings.smtp_security,
            timeout=settings.smtp_timeout_seconds,
            sender=settings.email_sender,
            pool_size=settings.smtp_pool_size,
        )
    )


def build_sms_channel(settings: ServiceSettings, outbox: FileOutbox) -> SmsChannel:
    match settings.sms_provider:
        case "webhook":
            assert settings.sms_webhook_url is not None  # checked when the settings were read
            return WebhookSmsChannel(
                settings.sms_webhook_url,
                auth_token=settings.sms_webhook_token,
                timeout=settings.sms_timeout_seconds,
            )
        case "twilio":
            assert settings.twilio_account_sid is not None
            assert settings.twilio_auth_token is not None
            return TwilioSmsChannel(
                settings.twilio_account_sid,
                settings.twilio_auth_token,
                base_url=settings.twilio_base_url,
                timeout=settings.sms_timeout_seconds,
            )
        case _:
            return outbox
