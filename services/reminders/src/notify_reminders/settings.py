"""The reminders service's settings: the shared ones plus its own, prefixed `REMINDERS_`."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from notify_reminders.policy import ReminderPolicies
from notify_shared.ledger.database import DatabaseUrl
from notify_shared.settings import ServiceSettings


class RemindersSettings(ServiceSettings):
    """Environment of the reminders service; see docs/operations.md for the full table."""

    # validate_by_name: tests and tools may pass `consumer_group=`; the environment uses the prefixed alias.
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True, validate_by_name=True)

    database_url: DatabaseUrl = Field(
        default="sqlite+aiosqlite:///./.local/reminders.db",
        description="SQLAlchemy async URL: the schedule of record and the delivery ledger. PostgreSQL for replicas.",
    )
    consumer_group: str = Field(
        default="notify-reminders",
        validation_alias="REMINDERS_CONSUMER_GROUP",
        description="Kafka consumer group; replicas of the service share it.",
    )
    policies: ReminderPolicies = Field(
        default_factory=ReminderPolicies,
        validation_alias="REMINDERS_POLICIES",
        description="JSON: rules, quiet hours and per-school / per-kind overrides (see docs/operations.md).",
    )
    grace_period: timedelta = Field(
        default=timedelta(minutes=30),
        validation_alias="REMINDERS_GRACE_PERIOD",
        description="After downtime, a reminder late by less than this is still sent (ISO 8601, e.g. PT30M).",
    )
    poll_interval: timedelta = Field(
        default=timedelta(seconds=30),
        gt=timedelta(0),
        validation_alias="REMINDERS_POLL_INTERVAL",
        description="How often the schedule is checked besides the armed wake-up (other replicas' reminders).",
    )
    claim_lease: timedelta = Field(
        default=timedelta(minutes=5),
        validation_alias="REMINDERS_CLAIM_LEASE",
        description="How long a replica owns the reminders it claimed; a dead replica's claims pass on after it.",
    )
    batch_size: int = Field(
        default=64,
        ge=1,
        le=10_000,
        validation_alias="REMINDERS_BATCH_SIZE",
        description="Reminders claimed at a time by each of a firing round's two lanes, and settled together.",
    )
    instance_id: str | None = Field(
        default=None,
        validation_alias="REMINDERS_INSTANCE_ID",
        description="Name of this replica in claims (default: the host name); each process adds its PID and a suffix.",
    )
