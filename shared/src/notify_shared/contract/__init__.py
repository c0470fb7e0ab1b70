"""The event contract: CloudEvents 1.0 envelopes with pydantic v2 models for every event the platform handles.

`docs/contract.md` walks through each event with an example; `contract/schemas/` holds the generated JSON Schemas.
"""

from notify_shared.contract.absences import Lesson, NotedAbsence, Pupil
from notify_shared.contract.answers import AnswerChannel, GuardianAnswer, UnrecognisedReason, UnrecognisedReply
from notify_shared.contract.envelope import (
    ALL_EVENT_TYPES,
    CLOUDEVENTS_JSON,
    INPUT_EVENT_TYPES,
    OUTPUT_EVENT_TYPES,
    AbsenceNoted,
    CloudEvent,
    MeetingCancelled,
    MeetingCreated,
    MeetingRsvp,
    MeetingUpdated,
    MessagePosted,
    NotificationDeadLettered,
    NotificationStatus,
    SmsReplyUnrecognised,
    SourceEvent,
    TalkBooked,
    TalkCancelled,
    TalkMoved,
    TalksOffered,
    TalksRoundClosed,
    partition_key,
)
from notify_shared.contract.handled import EVENT_HANDLED, EventHandled, EventHandledReport, HandlingOutcome
from notify_shared.contract.kafka_codec import EventRejected, decode_event, encode_binary, encode_structured
from notify_shared.contract.meetings import Meeting, MeetingCancellation, MeetingDetails, MeetingKind
from notify_shared.contract.messages import PostedMessage
from notify_shared.contract.outcomes import DeadLetter, DeadLetterHeader, NotificationStatusReport
from notify_shared.contract.parties import Channel, ContactProblem, DeliveryMode, Recipient, Rsvp, School
from notify_shared.contract.talks import (
    CancellationReason,
    RoundClosure,
    TalkBooking,
    TalkCancellation,
    TalkMove,
    TalkPupil,
    TalkRound,
    TalkSlot,
    Teacher,
)

# Registered here, not in envelope.py, because handled.py builds on envelope's CloudEvent.
OUTPUT_EVENT_TYPES[EVENT_HANDLED] = EventHandled
ALL_EVENT_TYPES[EVENT_HANDLED] = EventHandled

__all__ = [
    "ALL_EVENT_TYPES",
    "CLOUDEVENTS_JSON",
    "EVENT_HANDLED",
    "INPUT_EVENT_TYPES",
    "OUTPUT_EVENT_TYPES",
    "AbsenceNoted",
    "AnswerChannel",
    "CancellationReason",
    "Channel",
    "CloudEvent",
    "ContactProblem",
    "DeadLetter",
    "DeadLetterHeader",
    "DeliveryMode",
    "EventHandled",
    "EventHandledReport",
    "EventRejected",
    "GuardianAnswer",
    "HandlingOutcome",
    "Lesson",
    "Meeting",
    "MeetingCancellation",
    "MeetingCancelled",
    "MeetingCreated",
    "MeetingDetails",
    "MeetingKind",
    "MeetingRsvp",
    "MeetingUpdated",
    "MessagePosted",
    "NotedAbsence",
    "NotificationDeadLettered",
    "NotificationStatus",
    "NotificationStatusReport",
    "PostedMessage",
    "Pupil",
    "Recipient",
    "RoundClosure",
    "Rsvp",
    "School",
    "SmsReplyUnrecognised",
    "SourceEvent",
    "TalkBooked",
    "TalkBooking",
    "TalkCancellation",
    "TalkCancelled",
    "TalkMove",
    "TalkMoved",
    "TalkPupil",
    "TalkRound",
    "TalkSlot",
    "TalksOffered",
    "TalksRoundClosed",
    "Teacher",
    "UnrecognisedReason",
    "UnrecognisedReply",
    "decode_event",
    "encode_binary",
    "encode_structured",
    "partition_key",
]
