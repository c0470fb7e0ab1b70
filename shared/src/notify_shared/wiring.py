"""Building the channels a service sends through from its settings.

With no email API, SMTP server or SMS provider configured, both go to the file outbox, so a newcomer sees real results.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from notify_shared.channels import (
    CircuitBreaker,
    EmailChannel,
    FailoverSmsChannel,
    FileOutbox,
    SmsChannel,
    SmtpConfig,
    SmtpEmailChannel,
    TwilioSmsChannel,
    WebhookEmailChannel,
    WebhookSmsChannel,
)
from notify_shared.channels.throttle import (
    ProviderThrottle,
    ThrottledEmailChannel,
    ThrottledSmsChannel,
    ThrottleLimits,
)
from notify_shared.settings import ServiceSettings


def build_email_channel(settings: ServiceSettings, outbox: FileOutbox) -> EmailChannel:
    """The email API when EMAIL_WEBHOOK_URL is set, SMTP when SMTP_HOST is, else the outbox."""
    if settings.email_webhook_url is not None:
        api = WebhookEmailChannel(
            settings.email_webhook_url,
            auth_token=settings.email_webhook_token,
            timeout=settings.email_webhook_timeout_seconds,
            envelope_sender=settings.email_sender,
            max_connections=settings.email_webhook_max_connections,
        )
        return ThrottledEmailChannel(api, _throttle(settings, api.name, settings.email_webhook_max_connections))
    if settings.smtp_host is None:
        return outbox
    smtp = SmtpEmailChannel(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            security=settings.smtp_security,
            ca_file=settings.smtp_ca_file,
            timeout=settings.smtp_timeout_seconds,
            sender=settings.email_sender,
            pool_size=settings.smtp_pool_size,
        )
    )
    return ThrottledEmailChannel(smtp, _throttle(settings, smtp.name, settings.smtp_pool_size))


def _throttle(settings: ServiceSettings, name: str, max_in_flight: int) -> ProviderThrottle:
    """The gate every send through one provider passes in this process (one per provider, not per channel)."""
    return ProviderThrottle(
        name,
        ThrottleLimits(
            max_in_flight=max_in_flight,
            default_pause=settings.provider_pause_default.total_seconds(),
            max_wait=settings.provider_pause_max_wait.total_seconds(),
        ),
    )


def build_sms_channel(
    settings: ServiceSettings, outbox: FileOutbox, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> SmsChannel:
    """The SMS provider, or the first and second behind a circuit breaker when SMS_FALLBACK_PROVIDER is set."""
    primary = _sms_provider(settings, settings.sms_provider, outbox)
    if settings.sms_fallback_provider is None:
        return primary
    breaker = CircuitBreaker(
        failure_threshold=settings.sms_breaker_failures, cooldown=settings.sms_breaker_cooldown, clock=clock
    )
    secondary = _sms_provider(settings, settings.sms_fallback_provider, outbox, fallback=True)
    return FailoverSmsChannel(primary, secondary, breaker)


def _sms_provider(
    settings: ServiceSettings, provider: str, outbox: FileOutbox, *, fallback: bool = False
) -> SmsChannel:
    channel = _sms_client(settings, provider, outbox, fallback=fallback)
    if channel is outbox:
        return outbox
    # Behind a failover, each provider has its own gate: a pause of the first moves SMS to the second at once.
    return ThrottledSmsChannel(channel, _throttle(settings, channel.name, settings.sms_max_connections))


def _sms_client(settings: ServiceSettings, provider: str, outbox: FileOutbox, *, fallback: bool) -> SmsChannel:
    if provider == "webhook" and fallback:
        # The second provider's webhook has its own URL and token.
        assert settings.sms_fallback_webhook_url is not None  # checked when the settings were read
        return WebhookSmsChannel(
            settings.sms_fallback_webhook_url,
            auth_token=settings.sms_fallback_webhook_token,
            timeout=settings.sms_timeout_seconds,
            status_callback_url=status_callback_url(settings, provider),
            max_connections=settings.sms_max_connections,
        )
    match provider:
        case "webhook":
            assert settings.sms_webhook_url is not None  # checked when the settings were read
            return WebhookSmsChannel(
                settings.sms_webhook_url,
                auth_token=settings.sms_webhook_token,
                timeout=settings.sms_timeout_seconds,
                status_callback_url=status_callback_url(settings, provider),
                max_connections=settings.sms_max_connections,
            )
        case "twilio":
            assert settings.twilio_account_sid is not None
            assert settings.twilio_auth_token is not None
            return TwilioSmsChannel(
                settings.twilio_account_sid,
                settings.twilio_auth_token,
                base_url=settings.twilio_base_url,
                timeout=settings.sms_timeout_seconds,
                status_callback_url=status_callback_url(settings, provider),
                max_connections=settings.sms_max_connections,
            )
        case _:
            return outbox


def status_callback_url(settings: ServiceSettings, provider: str) -> str | None:
    """Where `provider` should send its delivery reports: `SMS_STATUS_CALLBACK_URL/<provider>`, or None when unset.

    One route per provider (`/delivery-reports/sms/webhook`, `…/twilio`), since each speaks its own format.
    """
    if settings.sms_status_callback_url is None:
        return None
    return f"{settings.sms_status_callback_url.rstrip('/')}/{provider}"
