"""Absence noted for a pupil, often one lesson at a time."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from notify_shared.contract.parties import Recipient, School
from notify_shared.contract.text import Identifier, LocalTimeOfDay, OneLine, SchoolDay


class Pupil(BaseModel):
    """The pupil, as little of them as a notice needs."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    pupil_id: Identifier = Field(description="The pupil's id; also the Kafka key.", examples=["p-77120"])
    first_name: OneLine = Field(examples=["Emma"])
    class_name: OneLine | None = Field(default=None, examples=["7B"])


class Lesson(BaseModel):
    """One lesson the pupil missed."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    period: int | None = Field(default=None, ge=0, le=20, description="Lesson number in the day.", examples=[2])
    subject: OneLine | None = Field(default=None, examples=["Matematikk"])
    starts_at: LocalTimeOfDay | None = Field(
        default=None,
        description="When the lesson starts on the school's clock, as HH:MM or HH:MM:SS, without a UTC offset.",
        examples=["09:00", "08:30:00"],
    )


class NotedAbsence(BaseModel):
    """`data` of absence.noted."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    school: School
    pupil: Pupil
    date: SchoolDay = Field(description="The school day, local to the school.")
    lessons: tuple[Lesson, ...] = Field(default=(), max_length=20, description="Missed lessons; empty means all day.")
    reported_by_guardian: bool = Field(
        default=False, description="The guardian reported it themselves: no notice, only a digest line."
    )
    reason: str | None = Field(
        default=None,
        max_length=2000,
        description="The admin system's reason. It can be health data, so it is NEVER rendered into a notification.",
    )
    recipients: tuple[Recipient, ...] = Field(max_length=50)
