"""iCalendar (RFC 5545 / iTIP RFC 5546) files for meeting invitations, updates and cancellations.

The UID is stable per meeting, so a calendar client that already holds the invitation updates or removes that
entry instead of adding a second one; SEQUENCE grows with every change that guardians are told about.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, vCalAddress, vText

from notify_shared.channels import Attachment
from notify_shared.contract import Meeting, Recipient, School
from notify_shared.rendering.markdown import markdown_to_text

PRODUCT_ID = "-//notify//school-home notifications//EN"
_BEGIN_OF_EVENT = b"BEGIN:VEVENT\r\n"
_END_OF_EVENT = b"END:VEVENT\r\n"


class CalendarMethod(StrEnum):
    REQUEST = "REQUEST"
    CANCEL = "CANCEL"


def meeting_uid(school: School, meeting: Meeting) -> str:
    """The calendar UID of a meeting: the same for its invitation, every update and its cancellation."""
    return f"{meeting.meeting_id}@{school.id}.notify"


class MeetingCalendar:
    """The `.ics` of one meeting for one method and sequence, built once and addressed to each guardian.

    Only the ATTENDEE differs between guardians, so the calendar is serialised once per meeting event and each
    guardian's attendee line is added to it: building it from scratch for every guardian was a third of the
    invitations service's CPU.
    """

    def __init__(
        self,
        *,
        school: School,
        meeting: Meeting,
        organizer_email: str,
        method: CalendarMethod,
        sequence: int,
        stamp: datetime | None = None,
    ) -> None:
        self.method = method
        zone = school.zone
        starts_at = meeting.starts_at.astimezone(zone)
        ends_at = meeting.ends_at.astimezone(zone)
        event = Event()
        event.add("uid", meeting_uid(school, meeting))
        event.add("sequence", sequence)
        event.add("dtstamp", stamp or datetime.now(UTC))
        event.add("dtstart", starts_at)
        event.add("dtend", ends_at)
        event.add("summary", meeting.title)
        event.add("location", meeting.location)
        if meeting.agenda:
            # Calendars show the description as plain text: the agenda's Markdown as it reads in the text e-mail.
            event.add("description", markdown_to_text(meeting.agenda))
        organizer = vCalAddress(f"mailto:{organizer_email}")
        organizer.params["cn"] = vText(meeting.organizer_name or school.name)
        event.add("organizer", organizer)
        if method is CalendarMethod.CANCEL:
            event.add("status", "CANCELLED")
        else:
            # No VALARM: the reminders service sends reminders at times that respect quiet hours.
            event.add("status", "CONFIRMED")
        calendar = Calendar()
        calendar.add("prodid", PRODUCT_ID)
        calendar.add("version", "2.0")
        calendar.add("method", method.value)
        calendar.add_component(_time_zone(zone, starts_at.year, ends_at.year))
        calendar.add_component(event)
        serialised = bytes(calendar.to_ical())
        # The attendee goes last in the VEVENT; property order inside a component carries no meaning.
        self._head, end_of_event, tail = serialised.rpartition(_END_OF_EVENT)
        self._tail = end_of_event + tail

    def for_guardian(self, guardian: Recipient) -> bytes:
        """The calendar with `guardian` as its attendee (none when they have no email address)."""
        if not guardian.email:
            return self._head + self._tail
        return self._head + _attendee_lines(guardian.email, guardian.name) + self._tail


def build_meeting_calendar(
    *,
    school: School,
    meeting: Meeting,
    guardian: Recipient,
    organizer_email: str,
    method: CalendarMethod,
    sequence: int,
    stamp: datetime | None = None,
) -> bytes:
    """The `.ics` for one guardian. Local times carry the school's TZID with its VTIMEZONE, so DST is right."""
    calendar = MeetingCalendar(
        school=school, meeting=meeting, organizer_email=organizer_email, method=method, sequence=sequence, stamp=stamp
    )
    return calendar.for_guardian(guardian)


def _attendee_lines(email: str, name: str) -> bytes:
    # Through icalendar, so the name is escaped and the line folded exactly as in the rest of the file.
    attendee = vCalAddress(f"mailto:{email}")
    attendee.params["cn"] = vText(name)
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    attendee.params["partstat"] = vText("NEEDS-ACTION")
    attendee.params["rsvp"] = vText("FALSE")
    holder = Event()
    holder.add("attendee", attendee)
    return bytes(holder.to_ical()).removeprefix(_BEGIN_OF_EVENT).removesuffix(_END_OF_EVENT)


@lru_cache(maxsize=256)
def _time_zone(zone: ZoneInfo, first_year: int, last_year: int) -> Timezone:
    """The VTIMEZONE for the meeting's years: its transitions from 1 January of the first to the end of the last.

    A narrow window keeps the file small (icalendar's default, 1970–2038, lists every transition of 68 years)
    and cheap to derive; it is cached, as the same few zones and years come up again and again. The component
    is only ever serialised, never changed, so calendars may share it.
    """
    return Timezone.from_tzinfo(zone, first_date=date(first_year, 1, 1), last_date=date(last_year + 1, 1, 1))


def calendar_attachment(ics: bytes, method: CalendarMethod) -> Attachment:
    """The `.ics` as an email attachment that calendar clients recognise as an invitation."""
    return Attachment(
        filename="invite.ics" if method is CalendarMethod.REQUEST else "cancel.ics",
        content_type=f"text/calendar; method={method.value}; charset=UTF-8",
        data=ics,
    )
