"""The digest service's settings: the shared ones plus its own, prefixed `DIGEST_`."""

from __future__ import annotations

from datetime import time, timedelta
from enum import IntEnum

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from notify_shared.contract import DeliveryMode
from notify_shared.ledger.database import DatabaseUrl
from notify_shared.quiet_hours import QuietHours
from notify_shared.settings import ServiceSettings


class Weekday(IntEnum):
    MONDAY = 0
    TUESDAY = 1
    WEDNESDAY = 2
    THURSDAY = 3
    FRIDAY = 4
    SATURDAY = 5
    SUNDAY = 6


class DigestSettings(ServiceSettings):
    """Environment of the digest service; see docs/operations.md for the full table."""

    # validate_by_name: tests and tools may pass `consumer_group=`; the environment uses the prefixed alias.
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True, validate_by_name=True)

    database_url: DatabaseUrl = Field(
        default="sqlite+aiosqlite:///./.local/digest.db",
        description="SQLAlchemy async URL: stored items, digests, notices and the delivery ledger.",
    )
    consumer_group: str = Field(default="notify-digest", validation_alias="DIGEST_CONSUMER_GROUP")
    default_mode: DeliveryMode = Field(
        default=DeliveryMode.WEEKLY,
        validation_alias="DIGEST_DEFAULT_MODE",
        description="Delivery mode of a guardian whose event carries none, unless their school has its own.",
    )
    school_modes: dict[str, DeliveryMode] = Field(
        default_factory=dict,
        validation_alias="DIGEST_SCHOOL_MODES",
        description='JSON: default delivery mode per school id, e.g. {"nor-0301-bjolsen": "daily"}.',
    )
    daily_at: time = Field(default=time(17, 0), validation_alias="DIGEST_DAILY_AT")
    weekly_day: Weekday = Field(default=Weekday.FRIDAY, validation_alias="DIGEST_WEEKLY_DAY")
    weekly_at: time = Field(default=time(14, 0), validation_alias="DIGEST_WEEKLY_AT")
    absence_debounce: timedelta = Field(
        default=timedelta(minutes=10),
        validation_alias="DIGEST_ABSENCE_DEBOUNCE",
        description="Absences of one pupil on one day within this window become one notice.",
    )
    quiet_hours: QuietHours = Field(default_factory=QuietHours, validation_alias="DIGEST_QUIET_HOURS")
    poll_interval: timedelta = Field(
        default=timedelta(seconds=30), gt=timedelta(0), validation_alias="DIGEST_POLL_INTERVAL"
    )
    claim_lease: timedelta = Field(default=timedelta(minutes=5), validation_alias="DIGEST_CLAIM_LEASE")
    batch_size: int = Field(default=200, ge=1, le=10_000, validation_alias="DIGEST_BATCH_SIZE")
    instance_id: str | None = Field(default=None, validation_alias="DIGEST_INSTANCE_ID")

    def mode_for(self, school_id: str, wanted: DeliveryMode | None) -> DeliveryMode:
        return wanted or self.school_modes.get(school_id, self.default_mode)
