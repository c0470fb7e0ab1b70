"""What the services publish: a status per notification, and dead letters for events they cannot use."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from notify_shared.contract.parties import Channel
from notify_shared.ledger.status import DeliveryStatus


class NotificationStatusReport(BaseModel):
    """`data` of notification.status: one step in the life of one notification. Ids only, no contact details."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    notification_id: str = Field(
        description="Stable id of the notification (school + source event's source and id + guardian + channel + "
        "template)."
    )
    source_event_source: str = Field(
        description="The CloudEvents source of the event that caused it; with `source_event_id`, what identifies that "
        "event. `/notify/<service>` for a notification the service started itself (a reminder, a digest).",
        examples=["/visma-flyt/0301"],
    )
    source_event_id: str = Field(
        description="The CloudEvents id of the event that caused it (unique only within its source)."
    )
    source_event_type: str = Field(examples=["meeting.created"])
    school_id: str
    guardian_id: str
    channel: Channel
    template: str = Field(examples=["meeting_invitation"])
    language: str | None = Field(default=None, description="The language actually rendered, after fallback.")
    status: DeliveryStatus
    reason: str | None = Field(
        default=None,
        description="Machine-readable cause: not_eligible, invalid_phone, smtp_550, …",
        examples=["not_eligible"],
    )
    attempt: int = Field(default=1, ge=0)
    sms_segments: int | None = Field(default=None, ge=1, description="SMS parts billed, so cost is visible.")
    occurred_at: AwareDatetime


class DeadLetterHeader(BaseModel):
    """One Kafka header of the rejected record, kept byte for byte."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    value_base64: str


class DeadLetter(BaseModel):
    """`data` of notification.dead-letter: a record a service could not use, kept whole so it can be replayed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field(
        description="Short cause: malformed_json, malformed_header, not_a_cloudevent, unknown_event_type, "
        "topic_mismatch, unsupported_content_type, schema_violation.",
        examples=["schema_violation"],
    )
    errors: tuple[str, ...] = Field(
        default=(), description="What was wrong, field by field. Never echoes the offending values."
    )
    service: str = Field(examples=["invitations"])
    source_event_id: str | None = Field(default=None, description="The CloudEvents id, when it could be read.")
    original_topic: str
    original_partition: int
    original_offset: int
    original_timestamp_ms: int | None = None
    original_key_base64: str | None = None
    original_value_base64: str
    original_headers: tuple[DeadLetterHeader, ...] = ()
    dead_lettered_at: AwareDatetime
