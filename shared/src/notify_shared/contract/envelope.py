"""CloudEvents 1.0 envelopes for every event type, in- and outbound.

Each topic carries one event type, named after it (see `notify_shared.topics`). The CloudEvents `id` is the
idempotency key of the source event: a redelivered or republished event with the same id never notifies twice.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict
from rfc3986_validator import validate_rfc3986

from notify_shared.contract.absences import NotedAbsence
from notify_shared.contract.answers import GuardianAnswer, UnrecognisedReply
from notify_shared.contract.meetings import MeetingCancellation, MeetingDetails
from notify_shared.contract.messages import PostedMessage
from notify_shared.contract.outcomes import DeadLetter, NotificationStatusReport
from notify_shared.contract.talks import RoundClosure, TalkBooking, TalkCancellation, TalkMove, TalkRound
from notify_shared.contract.text import Instant, has_control_characters

CLOUDEVENTS_JSON = "application/cloudevents+json"
# Required by CloudEvents 1.0 in every event, in the order the spec lists them.
REQUIRED_CONTEXT_ATTRIBUTES = ("specversion", "id", "source", "type")


def _require_context_attributes(schema: JsonDict) -> None:
    # `specversion` and `type` have defaults so that code can build an event without repeating them, and pydantic
    # leaves a field with a default out of `required`. On the wire both are required, by the spec and by our
    # decoder (an event without them is dead-lettered), so the published schemas must say so too.
    required = schema.get("required", [])
    assert isinstance(required, list)
    others = [name for name in required if name not in REQUIRED_CONTEXT_ATTRIBUTES]
    schema["required"] = [*REQUIRED_CONTEXT_ATTRIBUTES, *others]


class CloudEvent(BaseModel):
    """The CloudEvents 1.0 context attributes shared by every event."""

    # Unknown attributes are CloudEvents extensions (e.g. traceparent); they are kept, not rejected.
    model_config = ConfigDict(extra="allow", frozen=True, json_schema_extra=_require_context_attributes)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(
        min_length=1,
        max_length=200,
        description="Unique per source; the idempotency key. Republishing with the same id sends nothing new.",
        examples=["01JDQ5W8M3C8ZK4N2T6Y7B9E0F"],
    )
    source: str = Field(
        min_length=1,
        max_length=500,
        description="URI-reference (RFC 3986) of the producing system.",
        examples=["/visma-flyt/0301"],
        json_schema_extra={"format": "uri-reference"},
    )
    type: str
    time: Instant | None = Field(default=None, description="When it happened, with UTC offset.")
    subject: str | None = Field(default=None, max_length=500)
    datacontenttype: str | None = Field(default="application/json")
    dataschema: str | None = None

    @field_validator("id")
    @classmethod
    def _id_on_one_line(cls, value: str) -> str:
        # The id is what every log line and status event says about an event: a line break in it would let a
        # sender write log lines of their own.
        if has_control_characters(value):
            raise ValueError("must not contain line breaks or other control characters")
        return value

    @field_validator("source")
    @classmethod
    def _source_is_a_uri_reference(cls, value: str) -> str:
        # The library's pattern ends in `$`, which lets one trailing line break through; no URI holds a control
        # character, so those are refused first.
        if has_control_characters(value) or not validate_rfc3986(value, rule="URI_reference"):
            raise ValueError("must be a URI-reference (RFC 3986) such as '/visma-flyt/0301'")
        return value


class MeetingCreated(CloudEvent):
    """A meeting was scheduled: invite every eligible guardian."""

    type: Literal["meeting.created"] = "meeting.created"
    data: MeetingDetails


class MeetingUpdated(CloudEvent):
    """A meeting changed; `data` holds its full current state."""

    type: Literal["meeting.updated"] = "meeting.updated"
    data: MeetingDetails


class MeetingCancelled(CloudEvent):
    """A meeting was called off; `data` holds its last state."""

    type: Literal["meeting.cancelled"] = "meeting.cancelled"
    data: MeetingCancellation


class MessagePosted(CloudEvent):
    """A teacher posted a message to a class or to guardians."""

    type: Literal["message.posted"] = "message.posted"
    data: PostedMessage


class AbsenceNoted(CloudEvent):
    """A pupil was noted absent for one or more lessons."""

    type: Literal["absence.noted"] = "absence.noted"
    data: NotedAbsence


class NotificationStatus(CloudEvent):
    """One step in the life of one notification."""

    type: Literal["notification.status"] = "notification.status"
    data: NotificationStatusReport


class MeetingRsvp(CloudEvent):
    """A guardian answered an invitation (coming, not coming, not sure); the latest answer counts."""

    type: Literal["meeting.rsvp"] = "meeting.rsvp"
    data: GuardianAnswer


class SmsReplyUnrecognised(CloudEvent):
    """An SMS reply to an invitation could not be read as an answer; the school may want to read it."""

    type: Literal["sms.reply-unrecognised"] = "sms.reply-unrecognised"
    data: UnrecognisedReply


class TalksOffered(CloudEvent):
    """A round of development talks is offered (or its offer changed): guardians book a slot per pupil."""

    type: Literal["talks.offered"] = "talks.offered"
    data: TalkRound


class TalkBooked(CloudEvent):
    """A guardian booked a development talk for a pupil."""

    type: Literal["talk.booked"] = "talk.booked"
    data: TalkBooking


class TalkMoved(CloudEvent):
    """A guardian moved a pupil's development talk to another slot."""

    type: Literal["talk.moved"] = "talk.moved"
    data: TalkMove


class TalkCancelled(CloudEvent):
    """A pupil's booked development talk was cancelled (by a guardian, or by a new offer without its slot)."""

    type: Literal["talk.cancelled"] = "talk.cancelled"
    data: TalkCancellation


class TalksRoundClosed(CloudEvent):
    """Booking closed for a round; lists the pupils still without a time."""

    type: Literal["talks.round_closed"] = "talks.round_closed"
    data: RoundClosure


class NotificationDeadLettered(CloudEvent):
    """A record could not be used and was set aside with the reason."""

    type: Literal["notification.dead-letter"] = "notification.dead-letter"
    data: DeadLetter


SourceEvent = MeetingCreated | MeetingUpdated | MeetingCancelled | MessagePosted | AbsenceNoted

INPUT_EVENT_TYPES: dict[str, type[CloudEvent]] = {
    "meeting.created": MeetingCreated,
    "meeting.updated": MeetingUpdated,
    "meeting.cancelled": MeetingCancelled,
    "message.posted": MessagePosted,
    "absence.noted": AbsenceNoted,
    "talks.offered": TalksOffered,
}
OUTPUT_EVENT_TYPES: dict[str, type[CloudEvent]] = {
    "notification.status": NotificationStatus,
    "notification.dead-letter": NotificationDeadLettered,
    "meeting.rsvp": MeetingRsvp,
    "sms.reply-unrecognised": SmsReplyUnrecognised,
    "talk.booked": TalkBooked,
    "talk.moved": TalkMoved,
    "talk.cancelled": TalkCancelled,
    "talks.round_closed": TalksRoundClosed,
}
ALL_EVENT_TYPES: dict[str, type[CloudEvent]] = {**INPUT_EVENT_TYPES, **OUTPUT_EVENT_TYPES}


def partition_key(event: CloudEvent) -> bytes:
    """The Kafka key: the meeting id, round id or pupil id, so one entity's events stay in order on one partition."""
    data = getattr(event, "data", None)
    if isinstance(data, MeetingDetails):
        return data.meeting.meeting_id.encode()
    if isinstance(data, NotedAbsence):
        return data.pupil.pupil_id.encode()
    if isinstance(data, PostedMessage):
        return (data.pupil_id or data.class_id or data.message_id).encode()
    if isinstance(data, GuardianAnswer | UnrecognisedReply):
        # A reply from an unknown number has neither meeting nor guardian.
        return (data.meeting_id or data.guardian_id or event.id).encode()
    if isinstance(data, TalkRound | TalkBooking | TalkMove | TalkCancellation | RoundClosure):
        # One round's offers and bookings stay in order on one partition.
        return data.round_id.encode()
    return data.notification_id.encode() if isinstance(data, NotificationStatusReport) else event.id.encode()
