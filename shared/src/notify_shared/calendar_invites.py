"""iCalendar (RFC 5545 / iTIP RFC 5546) files for meeting invitations, updates and cancellations.

The UID is stable per meeting, so a calendar client that already holds the invitation updates or removes that
entry instead of adding a second one; SEQUENCE grows with every change that guardians are told about.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from icalendar import Calendar, Event, vCalAddress, vText

from notify_shared.channels import Attachment
from notify_shared.contract import Meeting, Recipient, School

PRODUCT_ID = "-//notify//school-home notifications//EN"


class CalendarMethod(StrEnum):
    REQUEST = "REQUEST"
    CANCEL = "CANCEL"


def meeting_uid(school: School, meeting: Meeting) -> str:
    """The calendar UID of a meeting: the same for its invitation, every update and its cancellation."""
    return f"{meeting.meeting_id}@{school.id}.notify"


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
    zone = school.zone
    event = Event()
    event.add("uid", meeting_uid(school, meeting))
    event.add("sequence", sequence)
    event.add("dtstamp", stamp or datetime.now(UTC))
    event.add("dtstart", meeting.starts_at.astimezone(zone))
    event.add("dtend", meeting.ends_at.astimezone(zone))
    event.add("summary", meeting.title)
    event.add("location", meeting.location)
    if meeting.agenda:
        event.add("description", meeting.agenda)
    organizer = vCalAddress(f"mailto:{organizer_email}")
    organizer.params["cn"] = vText(meeting.organizer_name or school.name)
    event.add("organizer", organizer)
    if guardian.email:
        attendee = vCalAddress(f"mailto:{guardian.email}")
        attendee.params["cn"] = vText(guardian.name)
        attendee.params["role"] = vText("REQ-PARTICIPANT")
        attendee.params["partstat"] = vText("NEEDS-ACTION")
        attendee.params["rsvp"] = vText("FALSE")
        event.add("attendee", attendee)
    if method is CalendarMethod.CANCEL:
        event.add("status", "CANCELLED")
    else:
        # No VALARM: the reminders service sends reminders at times that respect quiet hours.
        event.add("status", "CONFIRMED")
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("method", method.value)
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())


def calendar_attachment(ics: bytes, method: CalendarMethod) -> Attachment:
    """The `.ics` as an email attachment that calendar clients recognise as an invitation."""
    return Attachment(
        filename="invite.ics" if method is CalendarMethod.REQUEST else "cancel.ics",
        content_type=f"text/calendar; method={method.value}; charset=UTF-8",
        data=ics,
    )
