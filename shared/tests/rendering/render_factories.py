"""Realistic schools, meetings and guardians for the rendering tests; override what a test is about."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from notify_shared.contract.meetings import Meeting, MeetingKind
from notify_shared.contract.parties import Channel, Recipient, School
from notify_shared.rendering import RenderedNotification, render_notification

OSLO = ZoneInfo("Europe/Oslo")
TEMPLATES = ("meeting_invitation", "meeting_update", "meeting_cancellation")
LANGUAGES = ("nb", "nn", "en")

AGENDA = (
    "Vi snakker om klasseturen til Sognsvann i mai og om leksehjelp.\n"
    "Ta gjerne med forslag til dugnad og datoer som passer."
)


def school(**overrides: Any) -> School:
    values: dict[str, Any] = {
        "id": "nor-0301-4012",
        "name": "Bjølsen skole",
        "timezone": "Europe/Oslo",
        "written_standard": "nb",
        "sms_sender_id": "Bjolsen",
    }
    return School(**(values | overrides))


def meeting(**overrides: Any) -> Meeting:
    values: dict[str, Any] = {
        "meeting_id": "m-2026-7b-1",
        "kind": MeetingKind.PARENT_MEETING,
        "title": "Foreldremøte 7B",
        "starts_at": datetime(2026, 12, 3, 18, 0, tzinfo=OSLO),
        "ends_at": datetime(2026, 12, 3, 19, 30, tzinfo=OSLO),
        "location": "Rom 204",
        "agenda": AGENDA,
        "organizer_name": "Marte Kirkerud",
    }
    return Meeting(**(values | overrides))


def earlier_meeting(**overrides: Any) -> Meeting:
    """The same meeting as it stood before it was moved: a day earlier, in another room."""
    values: dict[str, Any] = {
        "starts_at": datetime(2026, 12, 2, 18, 0, tzinfo=OSLO),
        "ends_at": datetime(2026, 12, 2, 19, 30, tzinfo=OSLO),
        "location": "Rom 101",
    }
    return meeting(**(values | overrides))


def guardian(**overrides: Any) -> Recipient:
    values: dict[str, Any] = {
        "guardian_id": "g-50321",
        "name": "Kari Nordmann",
        "email": "kari.nordmann@example.no",
        "phone": "+4791234567",
        "language": "nb",
        "channels": (Channel.EMAIL, Channel.SMS),
        "has_parental_responsibility": True,
    }
    return Recipient(**(values | overrides))


def context(template: str, **overrides: Any) -> dict[str, object]:
    """What the invitations service passes for `template`, with realistic values."""
    values: dict[str, object] = {"school": school(), "meeting": meeting(), "guardian": guardian()}
    if template == "meeting_update":
        values |= {"changes": frozenset({"time", "place"}), "previous": earlier_meeting()}
    if template == "meeting_cancellation":
        values["cancellation_note"] = "Vi finner en ny dato i januar og sender en ny invitasjon."
    return values | overrides


def visible(html: str) -> str:
    """The HTML without the `<bdi>` isolates around inserted values, to look for a sentence as a reader sees it."""
    return html.replace("<bdi>", "").replace("</bdi>", "")


def render(template: str, language: str = "nb", school_standard: str = "nb", **overrides: Any) -> RenderedNotification:
    return render_notification(template, language, school_standard, context(template, **overrides))
