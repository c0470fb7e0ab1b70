"""The invitations service's settings: the shared ones plus its own, prefixed `INVITATIONS_`."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from notify_shared.answer_links import AnswerLinkSettings
from notify_shared.ledger.database import DatabaseUrl
from notify_shared.quiet_hours import QuietHours
from notify_shared.settings import ServiceSettings


class InvitationsSettings(ServiceSettings, AnswerLinkSettings):
    """Environment of the invitations service; see docs/operations.md for the full table."""

    # validate_by_name: tests and tools may pass `consumer_group=`; the environment uses the prefixed alias.
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True, validate_by_name=True)

    database_url: DatabaseUrl = Field(
        default="sqlite+aiosqlite:///./.local/invitations.db",
        description="SQLAlchemy async URL: the delivery ledger and the meeting states.",
    )
    consumer_group: str = Field(
        default="notify-invitations",
        validation_alias="INVITATIONS_CONSUMER_GROUP",
        description="Kafka consumer group; replicas of the service share it.",
    )
    organizer_email: str = Field(
        default="no-reply@notify.invalid",
        validation_alias="INVITATIONS_ORGANIZER_EMAIL",
        description="ORGANIZER address in calendar files; calendar replies go here.",
    )
    concurrency: int = Field(
        default=64,
        ge=1,
        le=256,
        validation_alias="INVITATIONS_CONCURRENCY",
        description="Notifications sent in parallel, over all events in progress.",
    )
    # NoDecode: `_parse_quiet_hours` reads the JSON itself, so `off` can turn the rule off (pydantic-settings would
    # read `null` as "not set" and keep the default).
    quiet_hours: Annotated[QuietHours | None, NoDecode] = Field(
        default_factory=QuietHours,
        validation_alias="INVITATIONS_QUIET_HOURS",
        description='JSON {"start": "21:00", "end": "07:00"}: local times in which the SMS of invitations, updates '
        "and cancellations wait for the end (unless the meeting starts before it); `off` sends them at once.",
    )
    event_concurrency: int = Field(
        default=8,
        ge=1,
        le=256,
        validation_alias="INVITATIONS_EVENT_CONCURRENCY",
        description="Meeting events handled at once; events of one meeting always one after the other.",
    )

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _parse_quiet_hours(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.strip().lower() == "off":
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ValueError('write JSON such as {"start": "21:00", "end": "07:00"}, or off') from None
