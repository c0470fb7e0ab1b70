"""The invitations service's settings: the shared ones plus its own, prefixed `INVITATIONS_`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from notify_shared.answer_links import AnswerLinkSettings
from notify_shared.settings import ServiceSettings


class InvitationsSettings(ServiceSettings, AnswerLinkSettings):
    """Environment of the invitations service; see docs/operations.md for the full table."""

    # validate_by_name: tests and tools may pass `consumer_group=`; the environment uses the prefixed alias.
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True, validate_by_name=True)

    database_url: str = Field(
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
        default=16,
        ge=1,
        le=256,
        validation_alias="INVITATIONS_CONCURRENCY",
        description="Notifications sent in parallel, over all events in progress.",
    )
    event_concurrency: int = Field(
        default=8,
        ge=1,
        le=256,
        validation_alias="INVITATIONS_EVENT_CONCURRENCY",
        description="Meeting events handled at once; events of one meeting always one after the other.",
    )
