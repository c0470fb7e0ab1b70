"""Meetings between school and home: parent meetings, development talks and ad-hoc meetings."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from notify_shared.contract.parties import Recipient, School
from notify_shared.contract.text import Identifier, Instant, OneLine, OptionalLongText


class MeetingKind(StrEnum):
    """What sort of meeting it is; templates and reminder policies differ by kind."""

    PARENT_MEETING = "parent_meeting"
    """Foreldremøte: for a whole class or group."""
    DEVELOPMENT_TALK = "development_talk"
    """Utviklingssamtale: about one pupil, by law twice a year."""
    OTHER = "other"
    """Any other meeting, including ad-hoc and difficult ones."""


class Meeting(BaseModel):
    """The full current state of a meeting. Updates and cancellations repeat it whole."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    meeting_id: Identifier = Field(
        description="Stable id of the meeting; also the Kafka key.", examples=["m-2026-7b-1"]
    )
    kind: MeetingKind
    title: OneLine = Field(examples=["Foreldremøte 7B"])
    starts_at: Instant = Field(description="Start, with UTC offset.", examples=["2026-12-03T18:00:00+01:00"])
    ends_at: Instant = Field(description="End, with UTC offset; after the start.")
    location: OneLine = Field(
        description="Where: a room at school or a video link. Never a home address.",
        examples=["Rom 204, Bjølsen skole"],
    )
    agenda: OptionalLongText = Field(
        default=None,
        description="What the meeting is about and what to bring or prepare. Plain text or Markdown.",
    )
    organizer_name: OneLine | None = Field(default=None, description="The teacher or staff member who invites.")
    pupil_present: bool | None = Field(default=None, description="For development talks: whether the pupil takes part.")

    @model_validator(mode="after")
    def _ends_after_start(self) -> Meeting:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at - self.starts_at > timedelta(hours=24):
            raise ValueError("a meeting lasts at most 24 hours")
        return self


class MeetingDetails(BaseModel):
    """`data` of meeting.created and meeting.updated: the school, the meeting and who is invited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    school: School
    meeting: Meeting
    recipients: tuple[Recipient, ...] = Field(max_length=2000, description="Every guardian invited, resolved.")


class MeetingCancellation(MeetingDetails):
    """`data` of meeting.cancelled: the meeting as it stood, and an optional note for the guardians."""

    cancellation_note: OptionalLongText = Field(
        default=None, description="Why it is cancelled or what happens instead, in words meant for parents."
    )
