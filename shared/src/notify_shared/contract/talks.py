"""Development talks booked by parents: the offer the admin system publishes (`talks.offered`) and the bookings
the responses service publishes back (`talk.booked`, `talk.moved`, `talk.cancelled`, `talks.round_closed`).

See docs/talks.md. Every id is scoped by school: a round id, slot id or pupil id means something only within
its school (docs/contract.md, "Which ids must be unique where").
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from notify_shared.contract.parties import Recipient, School
from notify_shared.contract.text import Identifier, Instant, OneLine

MAX_SLOTS = 2000
"""Slots in one round: a large class with several teachers over two weeks stays well below."""
MAX_PUPILS = 200
"""Pupils in one round (one class, or a year group offered together)."""
MAX_GUARDIANS_PER_PUPIL = 6

VideoLink = Annotated[
    str,
    StringConstraints(pattern=r"^https://[^\s/?#]+[^\s]*$", max_length=500),
]
"""An https address where the talk takes place by video."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Teacher(_Strict):
    """A teacher who holds talks in this round (usually the contact teacher)."""

    teacher_id: Identifier = Field(examples=["t-311"])
    name: OneLine = Field(description="As parents know the teacher.", examples=["Ole Lærer"])


class TalkSlot(_Strict):
    """One time a talk can be booked for: one pupil at most."""

    slot_id: Identifier = Field(description="Stable across offers of the round: a booking holds on to it.")
    starts_at: Instant = Field(description="Start, with UTC offset.", examples=["2026-11-09T14:00:00+01:00"])
    ends_at: Instant = Field(description="End, with UTC offset; after the start.")
    teacher_id: Identifier = Field(description="One of the round's `teachers`.")
    place: OneLine | None = Field(
        default=None, description="A room at school. Never a home address.", examples=["Rom 204"]
    )
    video_link: VideoLink | None = Field(default=None, description="An https link, when the talk is by video.")

    @model_validator(mode="after")
    def _a_time_and_a_place(self) -> TalkSlot:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at - self.starts_at > timedelta(hours=4):
            raise ValueError("a talk lasts at most 4 hours")
        if self.place is None and self.video_link is None:
            raise ValueError("a slot needs a place or a video_link")
        return self


class TalkPupil(_Strict):
    """A pupil who should have a talk, with the guardians who may book it."""

    pupil_id: Identifier = Field(examples=["p-77120"])
    first_name: OneLine = Field(
        description="Shown to the guardians, so that parents of two children know which talk they book.",
        examples=["Emma"],
    )
    guardians: tuple[Recipient, ...] = Field(
        min_length=1,
        max_length=MAX_GUARDIANS_PER_PUPIL,
        description="The same recipient block as meetings. Only guardians with parental responsibility and no "
        "block are invited and may book.",
    )


class TalkRound(_Strict):
    """`data` of talks.offered: the whole current offer of one round. A later offer with the same round id and a
    newer `time` replaces it: slots added or withdrawn, pupils added."""

    school: School
    round_id: Identifier = Field(description="Stable id of the round; also the Kafka key.", examples=["r-2026h-7b"])
    class_id: Identifier = Field(examples=["c-7b"])
    class_name: OneLine = Field(examples=["7B"])
    title: OneLine = Field(examples=["Utviklingssamtaler 7B, høsten 2026"])
    teachers: tuple[Teacher, ...] = Field(min_length=1, max_length=20)
    pupil_present: bool = Field(description="Whether the pupil takes part in the talk.")
    booking_opens_at: Instant = Field(description="From this time guardians are invited and may book.")
    booking_closes_at: Instant = Field(description="Until this time guardians may book, move and cancel.")
    slots: tuple[TalkSlot, ...] = Field(max_length=MAX_SLOTS)
    pupils: tuple[TalkPupil, ...] = Field(max_length=MAX_PUPILS)

    @model_validator(mode="after")
    def _consistent(self) -> TalkRound:
        if self.booking_closes_at <= self.booking_opens_at:
            raise ValueError("booking_closes_at must be after booking_opens_at")
        teachers = {teacher.teacher_id for teacher in self.teachers}
        if len(teachers) != len(self.teachers):
            raise ValueError("teacher ids must be unique")
        if len({slot.slot_id for slot in self.slots}) != len(self.slots):
            raise ValueError("slot ids must be unique within a round")
        if any(slot.teacher_id not in teachers for slot in self.slots):
            raise ValueError("every slot's teacher_id must be one of the round's teachers")
        if len({pupil.pupil_id for pupil in self.pupils}) != len(self.pupils):
            raise ValueError("pupil ids must be unique within a round")
        for pupil in self.pupils:
            if len({guardian.guardian_id for guardian in pupil.guardians}) != len(pupil.guardians):
                raise ValueError("a pupil's guardian ids must be unique")
        return self


class CancellationReason(StrEnum):
    """Why a booking ended."""

    BY_GUARDIAN = "by_guardian"
    """A guardian cancelled it on the booking page."""
    SLOT_WITHDRAWN = "slot_withdrawn"
    """A later offer no longer had the slot."""
    PUPIL_WITHDRAWN = "pupil_withdrawn"
    """A later offer no longer had the pupil."""


class _BookingFacts(_Strict):
    school_id: Identifier = Field(examples=["nor-0301-bjolsen"])
    round_id: Identifier = Field(description="The round; also the Kafka key.", examples=["r-2026h-7b"])
    pupil_id: Identifier = Field(examples=["p-77120"])
    slot_id: Identifier = Field(description="The slot the pupil now holds (for talk.cancelled: held).")
    starts_at: Instant
    ends_at: Instant
    teacher_id: Identifier


class TalkBooking(_BookingFacts):
    """`data` of talk.booked: a guardian booked a slot for a pupil with no booking in the round."""

    guardian_id: Identifier = Field(description="The guardian who booked.")
    booked_at: Instant


class TalkMove(_BookingFacts):
    """`data` of talk.moved: a guardian moved the pupil's booking to another slot."""

    guardian_id: Identifier = Field(description="The guardian who moved it.")
    previous_slot_id: Identifier = Field(description="The slot the pupil held before; it is free again.")
    moved_at: Instant


class TalkCancellation(_BookingFacts):
    """`data` of talk.cancelled: the pupil no longer holds a slot in the round."""

    reason: CancellationReason
    guardian_id: Identifier | None = Field(
        default=None, description="The guardian who cancelled; null when the school's new offer ended the booking."
    )
    cancelled_at: Instant


class RoundClosure(_Strict):
    """`data` of talks.round_closed: booking closed; the school assigns a time to the pupils still without one."""

    school_id: Identifier = Field(examples=["nor-0301-bjolsen"])
    round_id: Identifier = Field(description="The round; also the Kafka key.", examples=["r-2026h-7b"])
    closed_at: Instant
    booked: int = Field(ge=0, description="Pupils with a booked talk.")
    pupils_without_booking: tuple[Identifier, ...] = Field(
        max_length=MAX_PUPILS, description="Pupil ids of the round with no booking when the window closed."
    )
