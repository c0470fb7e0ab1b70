"""What the digest service hands the `digest` template: sections of messages and absences, already chosen.

The service decides what goes in (eligibility, delivery mode, grouping per child or class); the template only
lays it out. These are plain frozen dataclasses, not event models: a digest gathers many events, and the
template must see only what a guardian may read. There is deliberately no field for an absence reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time

from notify_shared.contract.absences import Lesson


@dataclass(frozen=True)
class DigestMessage:
    """One teacher's message, in full."""

    subject: str
    body: str
    """Markdown, as the teacher wrote it; rendered safely by the `markdown` and `markdown_text` filters."""
    author_name: str
    posted_at: datetime
    """Aware (with a UTC offset); shown in the school's time zone."""
    urgent: bool
    class_name: str | None

    def __post_init__(self) -> None:
        if self.posted_at.tzinfo is None or self.posted_at.utcoffset() is None:
            raise ValueError("posted_at must be an aware datetime (with a UTC offset)")


@dataclass(frozen=True)
class DigestAbsence:
    """One school day a pupil was absent, whole or in part. Never why."""

    pupil_first_name: str
    class_name: str | None
    date: date
    lessons: tuple[Lesson, ...]
    """The missed lessons; empty means the whole day."""
    reported_by_guardian: bool


@dataclass(frozen=True)
class DigestSection:
    """Everything for one child or one class, under one heading."""

    heading: str
    """As the guardian knows it, e.g. "Emma (7B)" for a child, "7B" for a class."""
    messages: tuple[DigestMessage, ...]
    absences: tuple[DigestAbsence, ...]


def lessons_in_order(lessons: Iterable[Lesson]) -> tuple[Lesson, ...]:
    """The lessons once each, in the order of the school day: by period, then start time, else as given.

    Lesson events arrive one by one and are merged by the service; a redelivered or out-of-order event must
    not make a notice read "3. time, 1. time, 1. time".
    """
    unique = tuple(dict.fromkeys(lessons))
    return tuple(
        sorted(
            unique,
            key=lambda lesson: (
                lesson.period is None,
                lesson.period or 0,
                lesson.starts_at is None,
                lesson.starts_at or time.min,
            ),
        )
    )
