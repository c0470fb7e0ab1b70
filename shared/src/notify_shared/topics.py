"""Topic names, in one place. Each topic is named after the event type it carries, behind an optional prefix."""

from __future__ import annotations

from dataclasses import dataclass

MEETING_CREATED = "meeting.created"
MEETING_UPDATED = "meeting.updated"
MEETING_CANCELLED = "meeting.cancelled"
MESSAGE_POSTED = "message.posted"
ABSENCE_NOTED = "absence.noted"
NOTIFICATION_STATUS = "notification.status"
NOTIFICATION_DEAD_LETTER = "notification.dead-letter"
EVENT_HANDLED = "event.handled"
MEETING_RSVP = "meeting.rsvp"
SMS_REPLY_UNRECOGNISED = "sms.reply-unrecognised"
TALKS_OFFERED = "talks.offered"
TALK_BOOKED = "talk.booked"
TALK_MOVED = "talk.moved"
TALK_CANCELLED = "talk.cancelled"
TALKS_ROUND_CLOSED = "talks.round_closed"


@dataclass(frozen=True)
class Topics:
    """Topic names for one deployment; `prefix` lets several environments share a cluster (e.g. `staging.`)."""

    prefix: str = ""

    def for_event_type(self, event_type: str) -> str:
        return f"{self.prefix}{event_type}"

    def event_type_of(self, topic: str) -> str:
        return topic.removeprefix(self.prefix)

    @property
    def meeting_created(self) -> str:
        return self.for_event_type(MEETING_CREATED)

    @property
    def meeting_updated(self) -> str:
        return self.for_event_type(MEETING_UPDATED)

    @property
    def meeting_cancelled(self) -> str:
        return self.for_event_type(MEETING_CANCELLED)

    @property
    def message_posted(self) -> str:
        return self.for_event_type(MESSAGE_POSTED)

    @property
    def absence_noted(self) -> str:
        return self.for_event_type(ABSENCE_NOTED)

    @property
    def notification_status(self) -> str:
        return self.for_event_type(NOTIFICATION_STATUS)

    @property
    def dead_letter(self) -> str:
        return self.for_event_type(NOTIFICATION_DEAD_LETTER)

    @property
    def event_handled(self) -> str:
        return self.for_event_type(EVENT_HANDLED)

    @property
    def meeting_rsvp(self) -> str:
        return self.for_event_type(MEETING_RSVP)

    @property
    def sms_reply_unrecognised(self) -> str:
        return self.for_event_type(SMS_REPLY_UNRECOGNISED)

    @property
    def talks_offered(self) -> str:
        return self.for_event_type(TALKS_OFFERED)

    @property
    def talk_booked(self) -> str:
        return self.for_event_type(TALK_BOOKED)

    @property
    def talk_moved(self) -> str:
        return self.for_event_type(TALK_MOVED)

    @property
    def talk_cancelled(self) -> str:
        return self.for_event_type(TALK_CANCELLED)

    @property
    def talks_round_closed(self) -> str:
        return self.for_event_type(TALKS_ROUND_CLOSED)
