"""The meeting's .ics: built once per meeting, addressed per guardian, with a time zone that gets DST right."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Timezone

from notify_shared import samples
from notify_shared.calendar_invites import CalendarMethod, MeetingCalendar, build_meeting_calendar

OSLO = ZoneInfo("Europe/Oslo")
STAMP = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _calendar(meeting_start: datetime, method: CalendarMethod = CalendarMethod.REQUEST) -> MeetingCalendar:
    meeting = samples.sample_meeting(starts_at=meeting_start, ends_at=meeting_start + timedelta(minutes=90))
    return MeetingCalendar(
        school=samples.sample_school(),
        meeting=meeting,
        organizer_email="post@bjolsen.example",
        method=method,
        sequence=2,
        stamp=STAMP,
    )


def _event(ics: bytes) -> Any:
    return next(iter(Calendar.from_ical(ics).walk("VEVENT")))


def test_each_guardian_is_the_only_attendee_of_their_own_copy() -> None:
    calendar = _calendar(datetime(2026, 12, 3, 18, 0, tzinfo=OSLO))
    first, second = samples.sample_guardian(1), samples.sample_guardian(2)

    for guardian in (first, second):
        event = _event(calendar.for_guardian(guardian))
        attendee = event["ATTENDEE"]
        assert not isinstance(attendee, list), "one attendee per copy"
        assert str(attendee) == f"mailto:{guardian.email}"
        assert attendee.params["CN"] == guardian.name
        assert event["SEQUENCE"] == 2
        assert event["UID"] == "m-2026-7b-foreldremote@nor-0301-bjolsen.notify"


def test_a_guardian_without_an_email_address_gets_a_calendar_without_attendee() -> None:
    calendar = _calendar(datetime(2026, 12, 3, 18, 0, tzinfo=OSLO))
    event = _event(calendar.for_guardian(samples.sample_guardian(1, email=None)))
    assert "ATTENDEE" not in event
    assert event["STATUS"] == "CONFIRMED"


def test_the_per_guardian_copy_equals_a_calendar_built_for_that_guardian_alone() -> None:
    start = datetime(2027, 1, 14, 17, 30, tzinfo=OSLO)
    guardian = samples.sample_guardian(1)
    shared = _calendar(start, CalendarMethod.CANCEL).for_guardian(guardian)
    alone = build_meeting_calendar(
        school=samples.sample_school(),
        meeting=samples.sample_meeting(starts_at=start, ends_at=start + timedelta(minutes=90)),
        guardian=guardian,
        organizer_email="post@bjolsen.example",
        method=CalendarMethod.CANCEL,
        sequence=2,
        stamp=STAMP,
    )
    assert shared == alone
    assert Calendar.from_ical(shared)["METHOD"] == "CANCEL"


def test_a_name_with_line_breaks_and_quotes_cannot_add_a_property() -> None:
    calendar = _calendar(datetime(2026, 12, 3, 18, 0, tzinfo=OSLO))
    guardian = samples.sample_guardian(1, name='Kari "K"\r\nATTENDEE:mailto:evil@example.com')
    ics = calendar.for_guardian(guardian)
    lines = ics.decode().split("\r\n")
    assert not any(line.startswith("ATTENDEE:mailto:evil") for line in lines)
    assert str(_event(ics)["ATTENDEE"]) == f"mailto:{guardian.email}"


def test_the_time_zone_block_puts_a_meeting_after_the_spring_change_in_summer_time() -> None:
    # 28 March 2027: clocks in Oslo go from 02:00 to 03:00. A client that trusts our VTIMEZONE rather than its
    # own zone database (Outlook does) must place a 18:00 meeting that day at 16:00 UTC, not 17:00.
    ics = _calendar(datetime(2027, 3, 28, 18, 0, tzinfo=OSLO)).for_guardian(samples.sample_guardian(1))
    parsed = Calendar.from_ical(ics)
    (zone_block,) = parsed.walk("VTIMEZONE")
    assert isinstance(zone_block, Timezone)
    zone_from_file = zone_block.to_tz(lookup_tzid=False)
    start = _event(ics).decoded("DTSTART").replace(tzinfo=None)

    assert start.replace(tzinfo=zone_from_file).astimezone(UTC) == datetime(2027, 3, 28, 16, 0, tzinfo=UTC)
    assert datetime(2027, 1, 10, 12, 0, tzinfo=zone_from_file).utcoffset() == timedelta(hours=1)


def test_the_time_zone_block_covers_the_meetings_years_only() -> None:
    ics = _calendar(datetime(2026, 12, 3, 18, 0, tzinfo=OSLO)).for_guardian(samples.sample_guardian(1))
    zone_block = ics[ics.index(b"BEGIN:VTIMEZONE") : ics.index(b"END:VTIMEZONE")]
    assert b"1970" not in zone_block
    assert len(ics) < 1_600, "icalendar's default 1970-2038 block made every file about 3 KB"


def test_the_calendar_entry_shows_a_markdown_agenda_as_plain_text() -> None:
    meeting = samples.sample_meeting(agenda="Husk **matpakke**, se [planen](https://skole.no/plan).")
    calendar = MeetingCalendar(
        school=samples.sample_school(),
        meeting=meeting,
        organizer_email="post@bjolsen.example",
        method=CalendarMethod.REQUEST,
        sequence=0,
        stamp=STAMP,
    )

    event = _event(calendar.for_guardian(samples.sample_guardian(1)))

    assert str(event["DESCRIPTION"]) == "Husk matpakke, se planen (https://skole.no/plan)."
