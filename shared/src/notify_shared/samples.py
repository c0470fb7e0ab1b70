"""Realistic sample events: for the demo, for previews, for tests and benchmarks.

The people are invented; addresses use the reserved example.no domain and the numbers are well-formed Norwegian
mobile numbers.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from datetime import time as time_of_day
from zoneinfo import ZoneInfo

from notify_shared.contract import (
    AbsenceNoted,
    Channel,
    DeliveryMode,
    Lesson,
    Meeting,
    MeetingCancellation,
    MeetingCancelled,
    MeetingCreated,
    MeetingDetails,
    MeetingKind,
    MeetingUpdated,
    MessagePosted,
    NotedAbsence,
    PostedMessage,
    Pupil,
    Recipient,
    School,
    TalkPupil,
    TalkRound,
    TalkSlot,
    TalksOffered,
    Teacher,
)

OSLO = ZoneInfo("Europe/Oslo")
SOURCE = "/admin-system/demo"


def sample_school(**overrides: object) -> School:
    fields: dict[str, object] = {
        "id": "nor-0301-bjolsen",
        "name": "Bjølsen skole",
        "timezone": "Europe/Oslo",
        "written_standard": "nb",
        "sms_sender_id": "Bjolsen",
    }
    return School.model_validate(fields | overrides)


def sample_guardian(number: int = 1, **overrides: object) -> Recipient:
    names = ["Kari Nordmann", "Ola Hansen", "Aisha Khan", "Piotr Nowak", "Olena Kovalenko", "Ingrid Bakke"]
    fields: dict[str, object] = {
        "guardian_id": f"g-{1000 + number}",
        "name": names[(number - 1) % len(names)],
        "email": f"guardian{number}@example.no",
        "phone": f"+47 9{number % 10_000_000:07d}",
        "language": "nb",
        "channels": [Channel.EMAIL, Channel.SMS],
        "has_parental_responsibility": True,
    }
    return Recipient.model_validate(fields | overrides)


SAMPLE_NOW = datetime(2026, 11, 20, 9, 0, tzinfo=OSLO)
"""When the samples are set: the sample meeting is two weeks later. Tests run their services' clocks from here."""


def upcoming_meeting(meeting_id: str, now: datetime) -> Meeting:
    """The sample meeting, moved to 18:00 (Oslo) one week after `now`: for demos run on any date."""
    starts = datetime.combine((now.astimezone(OSLO) + timedelta(days=7)).date(), datetime.min.time().replace(hour=18))
    starts = starts.replace(tzinfo=OSLO)
    return sample_meeting(meeting_id=meeting_id, starts_at=starts, ends_at=starts + timedelta(minutes=90))


def sample_meeting(**overrides: object) -> Meeting:
    starts = datetime(2026, 12, 3, 18, 0, tzinfo=OSLO)
    fields: dict[str, object] = {
        "meeting_id": "m-2026-7b-foreldremote",
        "kind": MeetingKind.PARENT_MEETING,
        "title": "Foreldremøte 7B",
        "starts_at": starts,
        "ends_at": starts + timedelta(minutes=90),
        "location": "Rom 204, Bjølsen skole",
        "agenda": "Leirskolen i mai: kostnader og pakkeliste.\nTa gjerne med spørsmål om overgangen til ungdomsskolen.",
        "organizer_name": "Ole Lærer",
    }
    return Meeting.model_validate(fields | overrides)


def _details(school: School | None, meeting: Meeting | None, recipients: list[Recipient] | None) -> dict[str, object]:
    return {
        "school": school or sample_school(),
        "meeting": meeting or sample_meeting(),
        "recipients": recipients if recipients is not None else [sample_guardian(1), sample_guardian(2)],
    }


def new_id() -> str:
    return str(uuid.uuid4())


def meeting_created(
    *,
    event_id: str | None = None,
    school: School | None = None,
    meeting: Meeting | None = None,
    recipients: list[Recipient] | None = None,
    time: datetime | None = None,
) -> MeetingCreated:
    return MeetingCreated(
        id=event_id or new_id(),
        source=SOURCE,
        time=time or datetime(2026, 11, 20, 9, 0, tzinfo=OSLO),
        data=MeetingDetails.model_validate(_details(school, meeting, recipients)),
    )


def meeting_updated(
    *,
    event_id: str | None = None,
    school: School | None = None,
    meeting: Meeting | None = None,
    recipients: list[Recipient] | None = None,
    time: datetime | None = None,
) -> MeetingUpdated:
    return MeetingUpdated(
        id=event_id or new_id(),
        source=SOURCE,
        time=time or datetime(2026, 11, 24, 9, 0, tzinfo=OSLO),
        data=MeetingDetails.model_validate(_details(school, meeting, recipients)),
    )


def meeting_cancelled(
    *,
    event_id: str | None = None,
    school: School | None = None,
    meeting: Meeting | None = None,
    recipients: list[Recipient] | None = None,
    note: str | None = "Vi finner en ny dato og sender ny innkalling.",
    time: datetime | None = None,
) -> MeetingCancelled:
    return MeetingCancelled(
        id=event_id or new_id(),
        source=SOURCE,
        time=time or datetime(2026, 11, 28, 9, 0, tzinfo=OSLO),
        data=MeetingCancellation.model_validate(_details(school, meeting, recipients) | {"cancellation_note": note}),
    )


def message_posted(
    *, event_id: str | None = None, urgent: bool = False, body: str | None = None, time: datetime | None = None
) -> MessagePosted:
    """A teacher's message to class 7B; `time` (default 4 December 2026, 11:30 in Oslo) is when it was posted."""
    posted_at = time or datetime(2026, 12, 4, 11, 30, tzinfo=OSLO)
    return MessagePosted(
        id=event_id or new_id(),
        source=SOURCE,
        time=posted_at,
        data=PostedMessage(
            school=sample_school(),
            message_id="msg-88213",
            class_id="c-7b",
            class_name="7B",
            author_name="Ole Lærer",
            subject="Tur til Sognsvann fredag",
            body=body
            or "Hei alle!\n\nPå fredag går 7B på tur til **Sognsvann**. Husk:\n\n- matpakke og drikke\n"
            "- varme klær og gode sko\n\nVi er tilbake ca. kl. 14.",
            urgent=urgent,
            posted_at=posted_at,
            recipients=(sample_guardian(1, delivery_mode=DeliveryMode.WEEKLY), sample_guardian(2)),
        ),
    )


def absence_noted(
    *, event_id: str | None = None, reported_by_guardian: bool = False, time: datetime | None = None
) -> AbsenceNoted:
    """Emma in 7B absent from the first lesson; `time` (default 7 December 2026, 08:40 in Oslo) is when it was
    noted, and the absence is on that day in Oslo."""
    noted_at = time or datetime(2026, 12, 7, 8, 40, tzinfo=OSLO)
    return AbsenceNoted(
        id=event_id or new_id(),
        source=SOURCE,
        time=noted_at,
        data=NotedAbsence(
            school=sample_school(),
            pupil=Pupil(pupil_id="p-77120", first_name="Emma", class_name="7B"),
            date=noted_at.astimezone(OSLO).date(),
            lessons=(Lesson(period=1, subject="Matematikk", starts_at=time_of_day(8, 30)),),
            reported_by_guardian=reported_by_guardian,
            reason="Syk",
            recipients=(sample_guardian(1), sample_guardian(2)),
        ),
    )


def sample_talk_slots(first_day: datetime, *, days: int = 2, per_day: int = 4) -> list[TalkSlot]:
    """Twenty-minute talks with Ole Lærer from 14:00 (the school's local time) on `days` days from `first_day`."""
    slots = []
    for day in range(days):
        date = (first_day.astimezone(OSLO) + timedelta(days=day)).date()
        for number in range(per_day):
            starts = datetime.combine(date, time_of_day(14, 0), tzinfo=OSLO) + timedelta(minutes=20 * number)
            slots.append(
                TalkSlot(
                    slot_id=f"s-{date.isoformat()}-{number + 1}",
                    starts_at=starts,
                    ends_at=starts + timedelta(minutes=20),
                    teacher_id="t-311",
                    place="Rom 204",
                )
            )
    return slots


def sample_talk_pupils(count: int = 2) -> list[TalkPupil]:
    """Pupils of 7B, each with two guardians who may book (numbered on from the pupil's number)."""
    first_names = ["Emma", "Noah", "Sofie", "Jakob", "Nora", "Filip"]
    return [
        TalkPupil(
            pupil_id=f"p-{77120 + number}",
            first_name=first_names[number % len(first_names)],
            guardians=(sample_guardian(2 * number + 1), sample_guardian(2 * number + 2)),
        )
        for number in range(count)
    ]


def talks_offered(
    *,
    event_id: str | None = None,
    round_id: str = "r-2026h-7b",
    opens_at: datetime | None = None,
    slots: list[TalkSlot] | None = None,
    pupils: list[TalkPupil] | None = None,
    teachers: list[Teacher] | None = None,
    time: datetime | None = None,
) -> TalksOffered:
    """Development talks for 7B: booking opens at `opens_at` (default 2 November 2026, 08:00 in Oslo) for a week;
    the talks are on the two days after it closes."""
    opens = opens_at or datetime(2026, 11, 2, 8, 0, tzinfo=OSLO)
    closes = opens + timedelta(days=7)
    return TalksOffered(
        id=event_id or new_id(),
        source=SOURCE,
        time=time or opens - timedelta(days=3),
        data=TalkRound(
            school=sample_school(),
            round_id=round_id,
            class_id="c-7b",
            class_name="7B",
            title="Utviklingssamtaler 7B, høsten 2026",
            teachers=tuple(teachers or [Teacher(teacher_id="t-311", name="Ole Lærer")]),
            pupil_present=True,
            booking_opens_at=opens,
            booking_closes_at=closes,
            slots=tuple(slots if slots is not None else sample_talk_slots(closes + timedelta(days=1))),
            pupils=tuple(pupils if pupils is not None else sample_talk_pupils()),
        ),
    )
