"""Hostile text in valid events: every notification still renders, and what it renders is inert.

Each example is a valid event as an admin system would send it (JSON, through the real decoder), with template
syntax, markup and script, line breaks, header injection, bidi controls and maximum-length fields in every
text field, and almost-valid contact points. For every guardian and every template that event leads to (the
contexts are the ones the services build), the suite asserts:

- rendering does not raise;
- the subject is one line, and the names and titles in it and in the text are shown as typed;
- nothing typed was run as a template (`{{ 1337*1001 }}` never becomes `1338337`);
- the HTML has no script, no other active element, no event handler, no `javascript:` link, and every element
  closes where it opened (typed text cannot close the layout's elements);
- the SMS stays within its three-segment budget;
- the e-mail built from it (with the `.ics` for meetings) is 7-bit clean, has no line over 998 characters,
  parses under the strict e-mail policy to exactly one From, To, Subject, Date and Message-ID and no other
  address header, with the subject and recipient exactly as rendered and normalised.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import event as hypothesis_event
from hypothesis import example, given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from notify_shared.calendar_invites import CalendarMethod, build_meeting_calendar, calendar_attachment
from notify_shared.channels import Attachment, OutgoingEmail
from notify_shared.channels.mime import compose_message
from notify_shared.contract import (
    INPUT_EVENT_TYPES,
    CloudEvent,
    MeetingCancelled,
    MeetingCreated,
    MeetingUpdated,
    MessagePosted,
    Recipient,
    decode_event,
    encode_structured,
)
from notify_shared.contract.absences import NotedAbsence
from notify_shared.contract.parties import Channel
from notify_shared.rendering import DigestAbsence, DigestMessage, DigestSection, render_notification

from .hostile_inputs import (
    E164,
    HOSTILE,
    LONG_TEXT_MAX,
    assert_no_active_content,
    assert_nothing_executed,
    document_at_limits,
    event_document,
    every_field_of_text,
    every_string,
    parse_wire,
    shown,
)

SENDER = "Bjølsen skole <no-reply@bjolsen.example.no>"
ORGANIZER = "no-reply@bjolsen.example.no"
ADDRESS_HEADERS = ("from", "to", "cc", "bcc", "reply-to", "sender", "resent-to", "resent-cc", "resent-bcc")
SINGLE_HEADERS = ("From", "To", "Subject", "Date", "Message-ID")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _decoded(document: dict[str, Any]) -> CloudEvent:
    # Through the real decoder, as the services get it: a valid event with hostile text is accepted whole.
    value, headers = encode_structured(INPUT_EVENT_TYPES[document["type"]].model_validate(document))
    event = decode_event(value, headers, INPUT_EVENT_TYPES)
    assert event.id == document["id"]
    return event


def _contexts(event: CloudEvent, guardian: Recipient, moved: bool, weekly: bool) -> list[tuple[str, dict[str, Any]]]:
    """The templates a guardian gets for this event, with the context each service builds for them."""
    data: Any = getattr(event, "data")  # noqa: B009 - CloudEvent has no `data`; every input event does
    school = data.school
    if isinstance(event, MeetingCreated | MeetingUpdated | MeetingCancelled):
        meeting = data.meeting
        base = {"school": school, "meeting": meeting, "guardian": guardian}
        if isinstance(event, MeetingCreated):
            return [
                ("meeting_invitation", base | {"changes": frozenset(), "previous": None}),
                ("meeting_reminder", base | {"moved": moved}),
            ]
        if isinstance(event, MeetingUpdated):
            previous = meeting.model_copy(
                update={
                    "starts_at": meeting.starts_at - timedelta(days=1),
                    "ends_at": meeting.ends_at - timedelta(days=1),
                    "location": "Rom 101",
                }
            )
            changes = frozenset({"time", "place"}) if moved else frozenset({"place"})
            return [("meeting_update", base | {"changes": changes, "previous": previous})]
        return [("meeting_cancellation", base | {"cancellation_note": data.cancellation_note})]
    period = "weekly" if weekly else "daily"
    if isinstance(event, MessagePosted):
        message = data
        digest_message = DigestMessage(
            subject=message.subject,
            body=message.body,
            author_name=message.author_name,
            posted_at=message.posted_at,
            urgent=message.urgent,
            class_name=message.class_name,
        )
        day = message.posted_at.astimezone(school.zone).date()
        heading = message.pupil_first_name or message.class_name or message.subject
        return [
            ("message_notice", {"school": school, "guardian": guardian, "message": message, "urgent": message.urgent}),
            (
                "digest",
                {
                    "school": school,
                    "guardian": guardian,
                    "period": period,
                    "period_start": day - timedelta(days=6 if weekly else 0),
                    "period_end": day,
                    "sections": (DigestSection(heading=heading, messages=(digest_message,), absences=()),),
                    "message_count": 1,
                    "absence_count": 0,
                },
            ),
        ]
    assert isinstance(data, NotedAbsence)
    pupil = data.pupil
    absence = DigestAbsence(
        pupil_first_name=pupil.first_name,
        class_name=pupil.class_name,
        date=data.date,
        lessons=data.lessons,
        reported_by_guardian=data.reported_by_guardian,
    )
    heading = f"{pupil.first_name} ({pupil.class_name})" if pupil.class_name else pupil.first_name
    return [
        (
            "absence_notice",
            {"school": school, "guardian": guardian, "pupil": pupil, "date": data.date, "lessons": data.lessons},
        ),
        (
            "digest",
            {
                "school": school,
                "guardian": guardian,
                "period": period,
                "period_start": data.date,
                "period_end": data.date,
                "sections": (DigestSection(heading=heading, messages=(), absences=(absence,)),),
                "message_count": 0,
                "absence_count": 1,
            },
        ),
    ]


def _calendar(event: CloudEvent, guardian: Recipient, template: str) -> tuple[Attachment, ...]:
    if template not in ("meeting_invitation", "meeting_update", "meeting_cancellation"):
        return ()
    data: Any = getattr(event, "data")  # noqa: B009 - see _contexts
    method = CalendarMethod.CANCEL if template == "meeting_cancellation" else CalendarMethod.REQUEST
    ics = build_meeting_calendar(
        school=data.school,
        meeting=data.meeting,
        guardian=guardian,
        organizer_email=ORGANIZER,
        method=method,
        sequence=1,
        stamp=datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
    )
    return (calendar_attachment(ics, method),)


def _check_email(guardian: Recipient, subject: str, text: str, html: str, attachments: tuple[Attachment, ...]) -> None:
    assert guardian.email is not None
    outgoing = OutgoingEmail(
        to=guardian.email,
        subject=subject,
        text=text,
        html=html,
        sender=SENDER,
        attachments=attachments,
        notification_id="4f0c2a9d7b1e3c5a8d6f0b2e4a",
    )
    wire = compose_message(outgoing, now=datetime(2026, 11, 20, 8, 0, tzinfo=UTC)).data
    assert wire.isascii(), "headers are RFC 2047-encoded and parts quoted-printable or base64"
    assert max(len(line) for line in wire.split(b"\r\n")) <= 998, "RFC 5322 line limit"
    parsed = parse_wire(wire)
    names = [name.lower() for name in parsed]
    for name in SINGLE_HEADERS:
        assert names.count(name.lower()) == 1, (name, names)
    assert {"cc", "bcc", "reply-to", "sender"}.isdisjoint(names), names
    for name in ("Subject", "From", "To"):
        assert not {"\r", "\n"} & set(str(parsed[name])), name
    assert str(parsed["Subject"]) == subject
    (address,) = parsed["To"].addresses
    assert address.addr_spec == guardian.email
    (plain,) = (part for part in parsed.walk() if part.get_content_type() == "text/plain")
    assert plain.get_content().replace("\r\n", "\n") == text.replace("\r\n", "\n").replace("\r", "\n")
    (rich,) = (part for part in parsed.walk() if part.get_content_type() == "text/html")
    assert_no_active_content(rich.get_content())
    for attachment in attachments:
        # Two text/calendar parts: the invitation a mail client acts on and the same file as an attachment.
        invitation_part, downloadable_copy = (
            part for part in parsed.walk() if part.get_content_type() == "text/calendar"
        )
        payload = invitation_part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        assert payload == attachment.data == downloadable_copy.get_payload(decode=True)
        (vevent,) = Calendar.from_ical(payload).walk("VEVENT")
        # No typed text adds a property (a second ATTENDEE, an ORGANIZER) or a component of its own.
        names = [name for name, _ in vevent.property_items(recursive=False)]
        assert names.count("ATTENDEE") == 1
        for name in ("UID", "SUMMARY", "LOCATION", "ORGANIZER", "DTSTART", "DTEND"):
            assert names.count(name) == 1, (name, names)


def _check_rendered_event(document: dict[str, Any], moved: bool, weekly: bool) -> int:
    event = _decoded(document)
    user_text = "\n".join(every_string(document["data"]))
    data: Any = getattr(event, "data")  # noqa: B009 - see _contexts
    rendered_count = emails = 0
    for guardian in data.recipients:
        if guardian.phone is not None:
            assert E164.fullmatch(guardian.phone) or guardian.contact_problem(Channel.SMS) is not None
        for template, context in _contexts(event, guardian, moved, weekly):
            rendered = render_notification(template, guardian.language, data.school.written_standard, context)
            rendered_count += 1
            assert rendered.subject.strip(), template
            assert not _CONTROL.search(rendered.subject), (template, rendered.subject)
            assert rendered.sms_segments <= 3, (template, rendered.sms_segments)
            assert_nothing_executed(user_text, rendered.subject, rendered.text, rendered.html, rendered.sms)
            scan = assert_no_active_content(rendered.html)
            # The greeting names the guardian exactly as typed (folded to one line), in the text and the HTML.
            assert shown(guardian.name) in shown(rendered.text), template
            assert shown(guardian.name) in shown(scan.visible_text()), template
            if guardian.contact_problem(Channel.EMAIL) is None:
                emails += 1
                _check_email(
                    guardian, rendered.subject, rendered.text, rendered.html, _calendar(event, guardian, template)
                )
    # What the examples covered, for --hypothesis-show-statistics.
    hypothesis_event("an e-mail was built and parsed" if emails else "no usable address: no e-mail built")
    if max(map(len, every_string(document["data"]))) >= LONG_TEXT_MAX - 100:
        hypothesis_event("a text at its 20,000-character limit")
    return rendered_count


def _render_settings(examples: int) -> settings:
    return settings(HOSTILE, max_examples=examples)


@_render_settings(80)
@given(event_document("meeting.created"), st.booleans(), st.booleans())
@example(document_at_limits("meeting.created", "nb"), True, True)
@example(document_at_limits("meeting.created", "ar"), False, False)
def test_meeting_invitations_and_reminders_with_hostile_text_render_inert(
    document: dict[str, Any], moved: bool, weekly: bool
) -> None:
    assert _check_rendered_event(document, moved, weekly) >= 2


@_render_settings(40)
@given(event_document("meeting.updated"), st.booleans(), st.booleans())
@example(document_at_limits("meeting.updated", "nb"), True, True)
@example(document_at_limits("meeting.updated", "ar"), False, False)
def test_meeting_updates_with_hostile_text_render_inert(document: dict[str, Any], moved: bool, weekly: bool) -> None:
    assert _check_rendered_event(document, moved, weekly) >= 1


@_render_settings(40)
@given(event_document("meeting.cancelled"), st.booleans(), st.booleans())
@example(document_at_limits("meeting.cancelled", "nb"), True, True)
@example(document_at_limits("meeting.cancelled", "ar"), False, False)
def test_meeting_cancellations_with_hostile_text_render_inert(
    document: dict[str, Any], moved: bool, weekly: bool
) -> None:
    assert _check_rendered_event(document, moved, weekly) >= 1


@_render_settings(80)
@given(event_document("message.posted"), st.booleans(), st.booleans())
@example(document_at_limits("message.posted", "nb"), True, True)
@example(document_at_limits("message.posted", "ar"), False, False)
def test_messages_with_hostile_markdown_render_inert_as_notices_and_in_digests(
    document: dict[str, Any], moved: bool, weekly: bool
) -> None:
    assert _check_rendered_event(document, moved, weekly) >= 2


@_render_settings(60)
@given(event_document("absence.noted"), st.booleans(), st.booleans())
@example(document_at_limits("absence.noted", "nb"), True, True)
@example(document_at_limits("absence.noted", "ar"), False, False)
def test_absences_with_hostile_names_render_inert_as_notices_and_in_digests(
    document: dict[str, Any], moved: bool, weekly: bool
) -> None:
    assert _check_rendered_event(document, moved, weekly) >= 2


TEMPLATE_TEXT = "Møte {{ 7*7 }} {% for x in range(3) %}Q{% endfor %} {{ config }} <script>alert(1)</script>"


@pytest.mark.parametrize(
    "event_type", ["meeting.created", "meeting.updated", "meeting.cancelled", "message.posted", "absence.noted"]
)
def test_template_syntax_typed_into_every_field_is_shown_as_typed_and_never_run(event_type: str) -> None:
    document = document_at_limits(event_type, "nb")
    for text in every_field_of_text(document["data"]):
        text.value = TEMPLATE_TEXT
    event = _decoded(document)
    data: Any = getattr(event, "data")  # noqa: B009 - see _contexts
    (guardian,) = data.recipients

    for template, context in _contexts(event, guardian, moved=True, weekly=False):
        rendered = render_notification(template, "nb", "nb", context)
        for part in (rendered.subject, rendered.text, rendered.sms, rendered.html):
            assert "49" not in part, template
            assert "QQQ" not in part, template
            assert "<Config" not in part, template
        assert "{{ 7*7 }}" in rendered.subject + rendered.text + rendered.sms, template
        assert "Møte {{ 7*7 }} {% for x in range(3) %}Q{% endfor %}" in shown(rendered.text), template
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html, template
