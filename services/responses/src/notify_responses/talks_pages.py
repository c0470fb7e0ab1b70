"""The booking page's HTML, in the guardian's language from the shared templates and catalogs
(`notify_shared/templates/_talks_*.html`), in the frame and stylesheet of the answer page."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

from notify_responses.pages import STYLESHEET
from notify_responses.talks_service import Outcome, PageState
from notify_responses.talks_store import BookingView, SlotRow
from notify_shared.rendering.environment import day_text, environment_for
from notify_shared.rendering.languages import direction_of

_ERRORS = (Outcome.TAKEN, Outcome.OVERLAP, Outcome.NO_CHOICE)


@dataclass(frozen=True)
class _School:
    """What the date functions of the template environment need from `school`: its time zone."""

    timezone: str


def _common(language: str, view: BookingView | None) -> dict[str, Any]:
    return {
        "lang": language,
        "direction": direction_of(language),
        "stylesheet": STYLESHEET,
        "school_name": view.round.school_name if view is not None else None,
        "school": _School(view.round.timezone if view is not None else "Europe/Oslo"),
        "round": view.round if view is not None else None,
        "pupil": view.pupil if view is not None else None,
        "has_errors": False,
    }


def _booked_slot(view: BookingView) -> SlotRow | None:
    if view.booking is None:
        return None
    return next((slot for slot in view.slots if slot.slot_id == view.booking.slot_id), None)


def _days(language: str, view: BookingView) -> list[tuple[str, list[SlotRow]]]:
    """The slots the guardian may choose (the free ones and the pupil's own), by day in the school's time zone."""
    zone = ZoneInfo(view.round.timezone)
    own = view.booking.slot_id if view.booking is not None else None
    choosable = [slot for slot in view.slots if slot.slot_id not in view.taken or slot.slot_id == own]
    by_day = groupby(choosable, key=lambda slot: slot.starts_at.astimezone(zone).date())
    return [(day_text(day, language), list(day_slots)) for day, day_slots in by_day]


def booking_page(
    language: str, view: BookingView, *, proof: str, problem: Outcome | None = None, forgery: bool = False
) -> str:
    """The slots and the form; `problem` says why the last attempt did not book (taken, overlap, no choice)."""
    errors = {outcome.value: outcome is problem for outcome in _ERRORS} | {"forgery": forgery}
    context = _common(language, view) | {
        "has_errors": any(errors.values()),
        "errors": errors,
        "booking": view.booking,
        "booked_slot": _booked_slot(view),
        "days": _days(language, view),
        "several_teachers": len({slot.teacher_id for slot in view.slots}) > 1,
        "proof": proof,
    }
    return environment_for(language).get_template("_talks_form.html").render(context)


def confirmation_page(language: str, view: BookingView) -> str:
    """What the pupil holds now (booked or moved), or that the booking is cancelled."""
    context = _common(language, view) | {"booking": view.booking, "booked_slot": _booked_slot(view)}
    return environment_for(language).get_template("_talks_confirmation.html").render(context)


def problem_page(language: str, problem: PageState | str, view: BookingView | None = None) -> str:
    """A link that cannot book now: invalid (names no school), closed, not yet open, or too many attempts."""
    shown = view if problem in (PageState.CLOSED, PageState.NOT_YET_OPEN) else None
    context = _common(language, shown) | {"problem": str(problem)}
    return environment_for(language).get_template("_talks_problem.html").render(context)
