"""The responses service's settings: the shared ones, the answer-link ones, and its own, prefixed `RESPONSES_`."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from notify_responses.auto_replies import AutoReplyMode
from notify_shared.answer_links import AnswerLinkSettings
from notify_shared.quiet_hours import QuietHours
from notify_shared.settings import Duration, ServiceSettings


class ResponsesSettings(ServiceSettings, AnswerLinkSettings):
    """Environment of the responses service; see docs/operations.md for the full table."""

    # validate_by_name: tests and tools may pass `consumer_group=`; the environment uses the prefixed alias.
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True, validate_by_name=True)

    database_url: str = Field(
        default="sqlite+aiosqlite:///./.local/responses.db",
        validation_alias="RESPONSES_DATABASE_URL",
        description="SQLAlchemy async URL of the meetings, invitations, answers and the outbox. PostgreSQL for "
        "replicas, which must share it.",
    )
    consumer_group: str = Field(
        default="notify-responses",
        validation_alias="RESPONSES_CONSUMER_GROUP",
        description="Kafka consumer group of the meeting events; replicas share it.",
    )
    answers_per_link_per_hour: int = Field(
        default=20,
        ge=1,
        le=10_000,
        validation_alias="RESPONSES_ANSWERS_PER_LINK_PER_HOUR",
        description="Answers one link may send in an hour; more are answered 429.",
    )
    requests_per_client_per_minute: int = Field(
        default=60,
        ge=1,
        le=100_000,
        validation_alias="RESPONSES_REQUESTS_PER_CLIENT_PER_MINUTE",
        description="Page requests (GET and POST) one client address may make in a minute; more are answered 429.",
    )
    relay_poll_interval: Duration = Field(
        default=timedelta(seconds=1),
        gt=timedelta(0),
        validation_alias="RESPONSES_RELAY_POLL_INTERVAL",
        description="How often the outbox relay looks for answers still to publish (an answer also wakes it).",
    )
    relay_retry_max: Duration = Field(
        default=timedelta(seconds=30),
        gt=timedelta(0),
        validation_alias="RESPONSES_RELAY_RETRY_MAX",
        description="Longest wait between two tries to publish while Kafka refuses events.",
    )

    sms_auto_replies: AutoReplyMode = Field(
        default=AutoReplyMode.HELP_AND_CONFIRMATION,
        validation_alias="RESPONSES_SMS_AUTO_REPLIES",
        description="Automatic SMS answers to SMS replies, at most one per number per day: `off`, `help` (to a "
        'reply that is no answer or comes when nothing is open) or `help_and_confirmation` (also "we have '
        'recorded: coming").',
    )
    quiet_hours: QuietHours = Field(
        default_factory=QuietHours,
        validation_alias="RESPONSES_QUIET_HOURS",
        description='JSON {"start": "21:00", "end": "07:00"}: local times in which an automatic SMS answer waits '
        "for the end (also the SMS confirming a development talk).",
    )
    organizer_email: str = Field(
        default="no-reply@notify.invalid",
        pattern=r"^[^@\s]+@[^@\s]+$",
        validation_alias="RESPONSES_ORGANIZER_EMAIL",
        description="ORGANIZER address in the calendar files of development talks; calendar replies go here.",
    )

    @model_validator(mode="after")
    def _answer_links_configured(self) -> ResponsesSettings:
        if not self.answer_links_enabled or self.public_base_url is None:
            raise ValueError(
                "the responses service needs ANSWER_LINK_KEYS, ANSWER_LINK_SIGNING_KEY_ID and PUBLIC_BASE_URL "
                "(the same as the invitations service's)"
            )
        return self

    @property
    def public_url(self) -> str:
        """PUBLIC_BASE_URL, which this service always has (checked at start-up)."""
        assert self.public_base_url is not None
        return self.public_base_url
