"""Realistic emails and SMS for the channel tests, offered as factory fixtures."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from notify_shared.channels import Attachment, OutgoingEmail, OutgoingSms

SCHOOL_SENDER = "Haugen skole <no-reply@haugen-skole.no>"

INVITATION_ICS = (
    b"BEGIN:VCALENDAR\r\n"
    b"PRODID:-//notify//school-home notifications//EN\r\n"
    b"VERSION:2.0\r\n"
    b"METHOD:REQUEST\r\n"
    b"BEGIN:VEVENT\r\n"
    b"UID:meeting-2025-10-14-5b@haugen-skole.notify\r\n"
    b"SEQUENCE:0\r\n"
    b"DTSTAMP:20250901T080000Z\r\n"
    b"DTSTART;TZID=Europe/Oslo:20251014T143000\r\n"
    b"DTEND;TZID=Europe/Oslo:20251014T150000\r\n"
    b"SUMMARY:Utviklingssamtale for Emma (5B)\r\n"
    b"LOCATION:Klasserom 5B\r\n"
    b"ORGANIZER;CN=Ingrid Bakke:mailto:no-reply@haugen-skole.no\r\n"
    b"STATUS:CONFIRMED\r\n"
    b"END:VEVENT\r\n"
    b"END:VCALENDAR\r\n"
)


def invitation_email(number: int = 1, *, to: str | None = None, subject: str | None = None) -> OutgoingEmail:
    """An invitation to a development talk, as the invitations service would send it to guardian `number`."""
    return OutgoingEmail(
        to=to or f"Forelder {number} Nordmann <forelder{number}@example.no>",
        subject=subject or "Invitasjon: utviklingssamtale for Emma tirsdag 14. oktober",
        text=f"Hei!\n\nDu er invitert til utviklingssamtale om Emma (5B), tirsdag 14. oktober kl. 14.30.\n"
        f"Ta gjerne med spørsmål. Vennlig hilsen Ingrid Bakke ({number})",
        html=f"<p>Hei!</p><p>Du er invitert til <b>utviklingssamtale</b> om Emma (5B), tirsdag 14. oktober "
        f"kl. 14.30.</p><p>Vennlig hilsen Ingrid Bakke ({number})</p>",
        sender=SCHOOL_SENDER,
        attachments=(
            Attachment(
                filename="invite.ics",
                content_type="text/calendar; method=REQUEST; charset=UTF-8",
                data=INVITATION_ICS,
            ),
        ),
        notification_id=f"ntf-3f1c9a7e-{number:04d}",
    )


def absence_sms(number: int = 1) -> OutgoingSms:
    """The same-day absence notice a guardian gets by SMS."""
    return OutgoingSms(
        to_e164=f"+479{number:07d}",
        sender_id="HaugenSkole",
        text="Emma er registrert fraværende i dag. Ta kontakt med skolen om noe er uklart. Hilsen Haugen",
        notification_id=f"ntf-sms-{number:04d}",
    )


MakeEmail = Callable[..., OutgoingEmail]
MakeSms = Callable[..., OutgoingSms]


@pytest.fixture
def make_invitation() -> MakeEmail:
    """`make_invitation(number, to=..., subject=...)`: a development-talk invitation with its `.ics`."""
    return invitation_email


@pytest.fixture
def make_absence_sms() -> MakeSms:
    """`make_absence_sms(number)`: a same-day absence SMS."""
    return absence_sms
