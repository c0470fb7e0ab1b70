"""Settings every service shares, read from the environment with pydantic-settings.

Deployment-wide settings (Kafka, database, channels) use plain names such as `KAFKA_BOOTSTRAP_SERVERS`; each
service adds its own under its prefix (`INVITATIONS_`, `REMINDERS_`, …). `docs/operations.md` lists them all.
A missing or invalid setting stops start-up with a message that names it (see `load_settings`).
"""

from __future__ import annotations

import ipaddress
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, FilePath, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from notify_shared.ledger.database import DatabaseUrl
from notify_shared.retention.windows import RetentionWindows
from notify_shared.topics import Topics


def _seconds_or_duration(value: object) -> object:
    # The environment gives strings; pydantic reads "PT5S" as a duration but not "5", which operators expect.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


Duration = Annotated[timedelta, BeforeValidator(_seconds_or_duration)]
"""A duration from the environment: seconds (`90`, `0.5`) or ISO 8601 (`PT90S`, `PT24H`)."""


class ServiceSettings(BaseSettings):
    """Settings shared by all services. Subclass it per service and add fields with the service's prefix."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True)

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Comma-separated host:port list of Kafka brokers."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How to talk to Kafka."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # FilePath: a CA file that is not there stops start-up naming the setting, not at the first TLS handshake.
    kafka_ssl_cafile: FilePath | None = Field(default=None, description="CA bundle for the brokers' certificates.")
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$", description="Prefix for every topic name.")

    database_url: DatabaseUrl = Field(
        default="sqlite+aiosqlite:///./.local/notify.db",
        description="SQLAlchemy async URL of the service's database (SQLite file or postgresql+asyncpg://…).",
    )

    smtp_host: str | None = Field(default=None, description="SMTP server; unset means emails go to the outbox.")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_ca_file: FilePath | None = Field(
        default=None,
        description="CA bundle that verifies the SMTP server's certificate (starttls, tls); unset: the system's CAs.",
    )
    smtp_pool_size: int = Field(
        default=16, ge=1, le=256, description="SMTP connections kept open and reused; also emails sent at once."
    )
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    email_sender: str = Field(
        default="Skolevarsel <no-reply@notify.invalid>", description="From: address of every email."
    )
    email_webhook_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="An email API that takes the whole message and honours Idempotency-Key (see docs/reliability.md), "
        "instead of SMTP: emails are then exactly once even when a service is killed. Not with SMTP_HOST.",
    )
    email_webhook_token: SecretStr | None = Field(
        default=None, description="Bearer token for EMAIL_WEBHOOK_URL; unset: no Authorization header."
    )
    email_webhook_timeout_seconds: float = Field(default=30.0, gt=0)

    sms_provider: Literal["outbox", "webhook", "twilio"] = Field(
        default="outbox", description="Where SMS go: the file outbox, a JSON webhook, or Twilio."
    )
    sms_webhook_url: str | None = None
    sms_webhook_token: SecretStr | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_base_url: str = "https://api.twilio.com"
    sms_timeout_seconds: float = Field(default=10.0, gt=0)
    sms_status_callback_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Public URL of this service's /delivery-reports/sms routes, e.g. "
        "https://invitations.example/delivery-reports/sms; each SMS asks its provider to report to <this>/<provider>. "
        "Unset: no reports are asked for.",
    )
    delivery_report_secret: SecretStr | None = Field(
        default=None,
        description="Shared secret of the HMAC-SHA256 signature (X-Notify-Signature) on delivery reports, for every "
        "route without a secret of its own; unset: those routes answer 404.",
    )
    delivery_report_sms_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Secret of /delivery-reports/sms/webhook only, so the SMS gateway cannot sign email bounces.",
    )
    delivery_report_sms_twilio_secret: SecretStr | None = Field(
        default=None,
        description="Secret of /delivery-reports/sms/twilio only (a relay signing Twilio's callbacks with ours).",
    )
    delivery_report_email_secret: SecretStr | None = Field(
        default=None, description="Secret of /delivery-reports/email only (the bounce processor's)."
    )
    delivery_report_tolerance: Duration = Field(
        default=timedelta(minutes=5),
        gt=timedelta(0),
        le=timedelta(hours=1),
        description="How far a signed report's X-Notify-Timestamp may lie from our clock, either way; older or "
        "newer reports are refused, so a captured report cannot be replayed later.",
    )
    allow_insecure_provider_urls: bool = Field(
        default=False,
        description="Accept http:// provider URLs for hosts other than loopback (a test network); otherwise they "
        "must be https, as they carry bearer tokens and personal data.",
    )

    outbox_dir: Path = Field(
        default=Path(".local/outbox"), description="Where the file outbox writes .eml files and sms.jsonl."
    )
    delivery_attempts: int = Field(
        default=20,
        ge=1,
        le=100,
        description="Tries per notification on transient provider errors before `failed` (the first try included).",
    )
    delivery_retry_base: Duration = Field(
        default=timedelta(seconds=5),
        gt=timedelta(0),
        description="Backoff before the first retry; doubles per try, with full jitter (seconds or ISO 8601).",
    )
    delivery_retry_max: Duration = Field(
        default=timedelta(minutes=10), gt=timedelta(0), description="Longest backoff between two tries."
    )
    delivery_retry_poll_interval: Duration = Field(
        default=timedelta(seconds=15),
        gt=timedelta(0),
        description="How often the retry worker looks for retries queued by other replicas or left by a dead one.",
    )
    delivery_lease: Duration = Field(
        default=timedelta(minutes=5),
        gt=timedelta(0),
        description="How long a claimed send or retry is protected; after a crash it is taken over after this.",
    )
    delivery_sender_timeout: Duration = Field(
        default=timedelta(seconds=20),
        gt=timedelta(0),
        description=(
            "A sender whose heartbeat is older than this is taken for dead, and its claims are taken over at once "
            "instead of after DELIVERY_LEASE (so it matters only when shorter than that). Same value on every replica; "
            "far above one send and clock skew."
        ),
    )
    retention_personal_data: Duration = Field(
        default=timedelta(days=30),
        gt=timedelta(0),
        description="Contact details, message bodies and meeting details are deleted this long after they stopped "
        "being needed (the notification final, the meeting over). See docs/privacy.md.",
    )
    retention_records: Duration = Field(
        default=timedelta(days=400),
        gt=timedelta(0),
        description="Ids, statuses and timings (the delivery ledger, ingest receipts) are deleted this long after "
        "their last change.",
    )
    retention_interval: Duration = Field(
        default=timedelta(hours=1), gt=timedelta(0), description="How often each service applies the retention."
    )
    email_deadline: Duration = Field(
        default=timedelta(hours=24),
        gt=timedelta(0),
        description="An email not sent within this time of its first try ends as `expired`.",
    )
    sms_deadline: Duration = Field(
        default=timedelta(hours=1),
        gt=timedelta(0),
        description="An SMS not sent within this time of its first try ends as `expired`.",
    )
    sms_fallback_provider: Literal["webhook", "twilio"] | None = Field(
        default=None,
        description="A second SMS provider, used while the first fails (behind a circuit breaker).",
    )
    sms_fallback_webhook_url: str | None = Field(
        default=None, description="The second provider's webhook URL, when SMS_FALLBACK_PROVIDER=webhook."
    )
    sms_fallback_webhook_token: SecretStr | None = None
    sms_breaker_failures: int = Field(
        default=5, ge=1, le=1000, description="Failures in a row that open the circuit to the first SMS provider."
    )
    sms_breaker_cooldown: Duration = Field(
        default=timedelta(seconds=30),
        gt=timedelta(0),
        description="How long the circuit stays open before one trial SMS goes to the first provider again.",
    )

    event_time_future_margin: Duration = Field(
        default=timedelta(hours=24),
        gt=timedelta(0),
        description="An event whose CloudEvents `time` lies further than this past the service's clock is refused "
        "(dead letter `time_in_future`; the ingest answers 400): a far-future time would make later events stale.",
    )

    # Slow and rate-limited providers (notify_shared.channels.throttle): how many sends each provider gets from this
    # instance at once, and how its requests to slow down (HTTP 429, SMTP 421) are honoured.
    sms_max_connections: int = Field(
        default=32,
        ge=1,
        le=512,
        description="SMS sent at once per provider from this instance (its connection limit shared by instances).",
    )
    email_webhook_max_connections: int = Field(
        default=32, ge=1, le=512, description="Emails sent at once through EMAIL_WEBHOOK_URL from this instance."
    )
    provider_pause_default: Duration = Field(
        default=timedelta(seconds=5),
        gt=timedelta(0),
        description="How long a channel pauses when its provider asks to slow down without a Retry-After "
        "(SMTP 421 never has one).",
    )
    provider_pause_max_wait: Duration = Field(
        default=timedelta(seconds=30),
        ge=timedelta(0),
        description="Longest a send waits in the process for its provider's pause to end; a longer pause sends the "
        "notification to the retry queue, due when the pause ends.",
    )

    http_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - the health and metrics port must be reachable from outside the pod
        description="Address the HTTP server (/healthz, /readyz, /metrics) listens on.",
    )
    http_port: int = Field(
        default=8000, ge=1, le=65535, description="Public port: /healthz and the /delivery-reports routes."
    )
    admin_port: int = Field(
        default=9000,
        ge=1,
        le=65535,
        description="Port of /metrics, /readyz and /healthz, apart from the public one so that only Prometheus and "
        "the kubelet reach it.",
    )

    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Worker processes of this service, started by one command: each its own Kafka consumer-group "
        "member, sharing the public port; ADMIN_PORT serves all of them. More than one needs PostgreSQL.",
    )

    dead_letter_retention: Duration = Field(
        default=timedelta(days=14),
        ge=timedelta(hours=1),
        description="How long Kafka keeps dead letters (the topic's retention.ms, set when a service starts): they "
        "hold the refused records' original bytes, personal data included.",
    )
    kafka_max_record_bytes: int = Field(
        default=1024 * 1024,
        ge=64 * 1024,
        le=64 * 1024 * 1024,
        description="Bytes a consumer fetches per partition (max_partition_fetch_bytes), and the most a compressed "
        "batch is decompressed to; a batch that expands further is dead-lettered as `record_too_large`.",
    )

    otel_enabled: bool = Field(
        default=False,
        description="Trace consumed and published events with OpenTelemetry (exported by OTLP/HTTP, configured by "
        "the SDK's own OTEL_* variables).",
    )

    @model_validator(mode="after")
    def _channel_settings_complete(self) -> ServiceSettings:
        self._provider_urls_safe()
        if self.admin_port == self.http_port:
            raise ValueError("ADMIN_PORT must differ from HTTP_PORT: metrics and readiness have a port of their own")
        if self.workers > 1 and str(self.database_url).startswith("sqlite"):
            raise ValueError(
                f"WORKERS={self.workers} needs a PostgreSQL database URL: SQLite lets one process write at a time, "
                "so run WORKERS=1 with SQLite"
            )
        if self.smtp_security == "none" and self.smtp_username is not None:
            raise ValueError(
                "SMTP_SECURITY=none with SMTP_USERNAME would send the password in clear: use starttls or tls"
            )
        if self.smtp_host and self.email_webhook_url:
            raise ValueError("set SMTP_HOST or EMAIL_WEBHOOK_URL, not both: emails go through one of them")
        if self.sms_provider == "webhook" and not self.sms_webhook_url:
            raise ValueError("SMS_WEBHOOK_URL is required when SMS_PROVIDER=webhook")
        if self.sms_provider == "twilio" and not (self.twilio_account_sid and self.twilio_auth_token):
            raise ValueError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required when SMS_PROVIDER=twilio")
        if self.sms_fallback_provider == "webhook" and not self.sms_fallback_webhook_url:
            raise ValueError("SMS_FALLBACK_WEBHOOK_URL is required when SMS_FALLBACK_PROVIDER=webhook")
        if self.sms_fallback_provider == "twilio" and self.sms_provider == "twilio":
            raise ValueError(
                "SMS_FALLBACK_PROVIDER=twilio needs SMS_PROVIDER to be another provider (one Twilio account)"
            )
        if self.sms_fallback_provider == "webhook" and self.sms_fallback_webhook_url == self.sms_webhook_url:
            raise ValueError("SMS_FALLBACK_WEBHOOK_URL must differ from SMS_WEBHOOK_URL")
        if self.sms_fallback_provider == "twilio" and not (self.twilio_account_sid and self.twilio_auth_token):
            raise ValueError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required when SMS_FALLBACK_PROVIDER=twilio")
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError("KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required with SASL")
        return self

    def _provider_urls_safe(self) -> None:
        urls = {
            "SMS_WEBHOOK_URL": self.sms_webhook_url,
            "SMS_FALLBACK_WEBHOOK_URL": self.sms_fallback_webhook_url,
            "TWILIO_BASE_URL": self.twilio_base_url,
            "EMAIL_WEBHOOK_URL": self.email_webhook_url,
        }
        for name, url in urls.items():
            if url is None:
                continue
            parts = urlsplit(url)
            if parts.scheme not in ("https", "http") or not parts.hostname:
                raise ValueError(f"{name} must be an https:// URL with a host")
            if parts.scheme == "http" and not (self.allow_insecure_provider_urls or is_loopback_host(parts.hostname)):
                raise ValueError(
                    f"{name} must be https (it carries a bearer token and personal data); http is accepted only "
                    "for loopback hosts, or with ALLOW_INSECURE_PROVIDER_URLS=true on a test network"
                )

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    @property
    def delivers_to_outbox(self) -> list[str]:
        """The channels that go to the development file outbox for want of a real provider ("email", "sms")."""
        channels = []
        if self.smtp_host is None and self.email_webhook_url is None:
            channels.append("email")
        if self.sms_provider == "outbox":
            channels.append("sms")
        return channels

    @property
    def retention_windows(self) -> RetentionWindows:
        return RetentionWindows(personal_data=self.retention_personal_data, records=self.retention_records)


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1): traffic that never leaves the machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def describe_settings_error(error: ValidationError) -> str:
    """Name each bad setting as its environment variable, without echoing the (possibly secret) value."""
    lines = []
    for issue in error.errors():
        name = "_".join(str(part) for part in issue["loc"]).upper() or "(settings)"
        lines.append(f"  {name}: {issue['msg']}")
    return "Invalid configuration:\n" + "\n".join(lines)


def load_settings(settings_class: type[SettingsT]) -> SettingsT:
    """Read settings from the environment, or stop the process with a message that names what is wrong."""
    try:
        return settings_class()
    except ValidationError as error:
        print(describe_settings_error(error), file=sys.stderr)
        raise SystemExit(2) from None
    except SettingsError as error:
        # A JSON-valued setting that is not JSON fails before validation, naming only the field.
        print(
            f"Invalid configuration:\n  {_environment_name_in(str(error), settings_class)}: not valid JSON",
            file=sys.stderr,
        )
        raise SystemExit(2) from None


def _environment_name_in(message: str, settings_class: type[BaseSettings]) -> str:
    match = re.search(r'field "([^"]+)"', message)
    if match is None:
        return "(settings)"
    field = settings_class.model_fields.get(match.group(1))
    alias = field.validation_alias if field is not None else None
    return str(alias or match.group(1)).upper()
