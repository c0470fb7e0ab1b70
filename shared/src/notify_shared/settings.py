"""Settings every service shares, read from the environment with pydantic-settings.

Deployment-wide settings (Kafka, database, channels) use plain names such as `KAFKA_BOOTSTRAP_SERVERS`; each
service adds its own under its prefix (`INVITATIONS_`, `REMINDERS_`, …). `docs/operations.md` lists them all.
A missing or invalid setting stops start-up with a message that names it (see `load_settings`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from notify_shared.topics import Topics


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
    kafka_ssl_cafile: Path | None = Field(default=None, description="CA bundle for the brokers' certificates.")
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$", description="Prefix for every topic name.")

    database_url: str = Field(
        default="sqlite+aiosqlite:///./.local/notify.db",
        description="SQLAlchemy async URL of the service's database (SQLite file or postgresql+asyncpg://…).",
    )

    smtp_host: str | None = Field(default=None, description="SMTP server; unset means emails go to the outbox.")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_pool_size: int = Field(default=4, ge=1, le=64, description="SMTP connections kept open and reused.")
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    email_sender: str = Field(
        default="Skolevarsel <no-reply@notify.invalid>", description="From: address of every email."
    )

    sms_provider: Literal["outbox", "webhook", "twilio"] = Field(
        default="outbox", description="Where SMS go: the file outbox, a JSON webhook, or Twilio."
    )
    sms_webhook_url: str | None = None
    sms_webhook_token: SecretStr | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_base_url: str = "https://api.twilio.com"
    sms_timeout_seconds: float = Field(default=10.0, gt=0)

    outbox_dir: Path = Field(
        default=Path(".local/outbox"), description="Where the file outbox writes .eml files and sms.jsonl."
    )
    delivery_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Tries per notification on transient provider errors before `failed`.",
    )

    http_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - the health and metrics port must be reachable from outside the pod
        description="Address the HTTP server (/healthz, /readyz, /metrics) listens on.",
    )
    http_port: int = Field(default=8000, ge=1, le=65535, description="Port of /healthz, /readyz and /metrics.")

    @model_validator(mode="after")
    def _channel_settings_complete(self) -> ServiceSettings:
        if self.sms_provider == "webhook" and not self.sms_webhook_url:
            raise ValueError("SMS_WEBHOOK_URL is required when SMS_PROVIDER=webhook")
        if self.sms_provider == "twilio" and not (self.twilio_account_sid and self.twilio_auth_token):
            raise ValueError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required when SMS_PROVIDER=twilio")
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError("KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required with SASL")
        return self

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)


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
