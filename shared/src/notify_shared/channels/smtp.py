"""Email over SMTP (aiosmtplib), through a pool of reused sessions."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Literal

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from notify_shared.channels.base import (
    DeliveryError,
    DeliveryReceipt,
    EmailChannel,
    OutgoingEmail,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from notify_shared.channels.mime import compose_message, parse_single_address
from notify_shared.channels.smtp_pool import SmtpConnectionPool

logger = logging.getLogger(__name__)


class SmtpConfig(BaseModel):
    """How to reach the SMTP server (a relay, or a provider such as a municipality's mail gateway)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(description="SMTP server host name or IP address.")
    port: int = Field(default=587, ge=1, le=65535, description="587 for STARTTLS, 465 for TLS, 25 for none.")
    username: str | None = Field(default=None, description="Login for SMTP AUTH; unset means no AUTH.")
    password: SecretStr | None = Field(default=None, description="Password for SMTP AUTH.")
    security: Literal["none", "starttls", "tls"] = Field(
        default="starttls",
        description="`starttls` upgrades a plain session; `tls` connects with TLS (port 465).",
    )
    timeout: float = Field(default=30.0, gt=0, description="Seconds to wait for connecting and for each reply.")
    sender: str | None = Field(
        default=None,
        description="Envelope sender (MAIL FROM), where bounces go; a display name is allowed and ignored. "
        "Unset means each email's From address.",
    )
    pool_size: int = Field(default=16, ge=1, le=256, description="SMTP sessions kept open and used in parallel.")
    ca_file: Path | None = Field(
        default=None, description="CA bundle to verify the server's certificate; unset means the system's."
    )
    local_hostname: str | None = Field(
        default=None, description="Name to send in EHLO; unset means this machine's fully qualified name."
    )

    @model_validator(mode="after")
    def _login_complete(self) -> SmtpConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("SMTP username and password must be set together")
        return self


class SmtpEmailChannel(EmailChannel):
    """Sends each email in its own SMTP transaction, up to `pool_size` at a time over reused sessions.

    Failures map to `TransientDeliveryError` (4xx replies, timeouts, refused or lost connections) or
    `PermanentDeliveryError` (5xx replies, addresses that cannot be sent). A TLS failure (a certificate that does
    not verify against `ca_file`, a failed handshake, a server that offers no STARTTLS) is transient with reason
    `smtp_tls_certificate` or `smtp_tls_error`: it is this deployment's configuration, not the recipient, so the
    email waits for a retry. Its details are logged once, as a warning, until a session succeeds again.
    """

    name = "smtp"

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        self._envelope_sender = parse_single_address(config.sender).addr_spec if config.sender else None
        self._pool = SmtpConnectionPool(self._connect, config.pool_size)
        self._tls_failure_logged = False

    async def send_email(self, message: OutgoingEmail) -> DeliveryReceipt:
        """Send one email; the receipt's `provider_message_id` is the Message-ID header."""
        try:
            composed = compose_message(message)
        except ValueError:
            raise PermanentDeliveryError("invalid_address") from None
        sender = self._envelope_sender or composed.sender.addr_spec
        await self._transact(composed.data, sender, composed.recipient.addr_spec, message.notification_id)
        logger.debug("notification %s accepted by the SMTP server", message.notification_id)
        return DeliveryReceipt(provider=self.name, provider_message_id=composed.message_id)

    async def aclose(self) -> None:
        """Let sends in flight finish, then QUIT every session."""
        await self._pool.aclose()

    async def _transact(self, data: bytes, sender: str, recipient: str, notification_id: str) -> None:
        for attempt in (1, 2):
            verified = True
            try:
                async with self._pool.lease() as lease:
                    verified = lease.verified
                    await lease.client.sendmail(sender, [recipient], data)
                return
            except _SMTP_FAILURES as error:
                # An unprobed reused session that fails this way was almost surely closed by the server while
                # idle. The dispatcher would retry anyway, so retrying at once on a fresh session adds no
                # duplicate risk and spares a backoff and a wasted attempt.
                if attempt == 1 and not verified and _server_left(error):
                    logger.info("reused SMTP session was gone; retrying notification %s", notification_id)
                    continue
                raise _delivery_error(error) from _cause_worth_keeping(error)

    async def _connect(self) -> aiosmtplib.SMTP:
        config = self._config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=config.password.get_secret_value() if config.password else None,
            local_hostname=config.local_hostname,
            timeout=config.timeout,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            cert_bundle=str(config.ca_file) if config.ca_file else None,
        )
        try:
            await client.connect()
        except BaseException as error:
            client.close()
            if isinstance(error, Exception):
                self._log_tls_failure(error)
            raise
        self._tls_failure_logged = False
        return client

    def _log_tls_failure(self, error: Exception) -> None:
        # Every email fails the same way until the configuration is fixed; one warning with the details is clear,
        # one per email would bury it. The details name the host and the certificate, never a recipient.
        if _tls_failure(error) is None:
            return
        config = self._config
        level = logging.DEBUG if self._tls_failure_logged else logging.WARNING
        logger.log(
            level,
            "TLS with the SMTP server %s:%d (SMTP_SECURITY=%s) failed: %s. Emails wait for retries; check "
            "SMTP_HOST, SMTP_PORT, SMTP_SECURITY and SMTP_CA_FILE (%s)",
            config.host,
            config.port,
            config.security,
            _tls_detail(error),
            config.ca_file or "the system's CAs",
        )
        self._tls_failure_logged = True


def _tls_failure(error: BaseException) -> str | None:
    """`smtp_tls_certificate` or `smtp_tls_error` when `error` is (or was caused by) a TLS failure, else None."""
    seen: BaseException | None = error
    for _ in range(5):  # the SSL error is the error itself (STARTTLS) or its cause (implicit TLS)
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return "smtp_tls_certificate"
        if isinstance(seen, ssl.SSLError):
            return "smtp_tls_error"
        seen = seen.__cause__ or seen.__context__
    # aiosmtplib refuses to go on in plain text when the server does not offer STARTTLS (or strips it).
    if type(error) is aiosmtplib.SMTPException and "STARTTLS" in str(error):
        return "smtp_tls_error"
    return None


def _tls_detail(error: BaseException) -> str:
    seen: BaseException | None = error
    for _ in range(5):
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"certificate not trusted: {str(seen.verify_message or seen.reason).rstrip('.')}"
        if isinstance(seen, ssl.SSLError) or seen is None:
            break
        seen = seen.__cause__ or seen.__context__
    return str(seen if seen is not None else error)


def _server_left(error: Exception) -> bool:
    if isinstance(error, aiosmtplib.SMTPServerDisconnected):
        return True
    return isinstance(error, aiosmtplib.SMTPResponseException) and error.code == 421


_SMTP_FAILURES = (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError)

# Failures without a reply code, checked in order because aiosmtplib's errors inherit from several of these.
_FAILURES_WITHOUT_REPLY: tuple[tuple[type[Exception], str, type[DeliveryError]], ...] = (
    (TimeoutError, "smtp_timeout", TransientDeliveryError),
    (aiosmtplib.SMTPServerDisconnected, "smtp_disconnected", TransientDeliveryError),
    (OSError, "smtp_connect_error", TransientDeliveryError),
    # The server lacks something this message needs, e.g. SMTPUTF8 for a non-ASCII address.
    (aiosmtplib.SMTPNotSupported, "smtp_not_supported", PermanentDeliveryError),
    (ValueError, "invalid_address", PermanentDeliveryError),
)


def _delivery_error(error: aiosmtplib.SMTPException | OSError | TimeoutError | ValueError) -> DeliveryError:
    tls_reason = _tls_failure(error)
    if tls_reason is not None:
        return TransientDeliveryError(tls_reason)
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        code = error.recipients[0].code if error.recipients else 550
        return _by_code(code, f"smtp_rcpt_{code}")
    if isinstance(error, aiosmtplib.SMTPResponseException):
        prefix = "smtp_auth" if isinstance(error, aiosmtplib.SMTPAuthenticationError) else "smtp"
        return _by_code(error.code, f"{prefix}_{error.code}")
    for kind, reason, error_class in _FAILURES_WITHOUT_REPLY:
        if isinstance(error, kind):
            return error_class(reason)
    return TransientDeliveryError("smtp_error")


_SLOW_DOWN_CODES = frozenset({421, 432, 454})
"""Replies about the server's load, not the message: 421 (too busy, too many connections), Exchange Online's 432
(4.3.2, more concurrent connections than it allows) and Amazon SES's 454 (sending rate exceeded)."""


def _by_code(code: int, reason: str) -> DeliveryError:
    if 400 <= code < 500:
        return TransientDeliveryError(reason, slow_down=code in _SLOW_DOWN_CODES)
    if 500 <= code < 600:
        return PermanentDeliveryError(reason)
    # Not a failure reply (a garbled or unexpected line): the server is confused, the address is not wrong.
    return TransientDeliveryError(f"smtp_unexpected_{code}")


def _cause_worth_keeping(error: Exception) -> Exception | None:
    # Reply texts and address errors can quote the recipient's address, so they stay out of tracebacks.
    # Connection and TLS failures hold only host names and certificate details, which an operator needs (an SSL
    # error is also a ValueError, so it is let through first).
    if _tls_failure(error) is not None:
        return error
    if isinstance(error, aiosmtplib.SMTPResponseException | aiosmtplib.SMTPRecipientsRefused | ValueError):
        return None
    return error
