"""Development-talk helpers for tests: a guardian's booking link, and the page's form as a browser sends it."""

from __future__ import annotations

import re
from html import unescape

import httpx

from notify_responses.settings import ResponsesSettings
from notify_responses.testing import RunningResponses, proof_in
from notify_shared.answer_links import AnswerLinkKeys
from notify_shared.contract import TalksOffered

_SLOT_CHOICE = re.compile(r'name="slot" type="radio" value="([^"]*)"')


def booking_link_for(settings: ResponsesSettings, event: TalksOffered, pupil: int = 0, guardian: int = 0) -> str:
    """The token of the booking link of the offer's `pupil`th pupil's `guardian`th guardian."""
    data = event.data
    return AnswerLinkKeys.from_settings(settings).sign_booking(
        school_id=data.school.id,
        round_id=data.round_id,
        pupil_id=data.pupils[pupil].pupil_id,
        guardian_id=data.pupils[pupil].guardians[guardian].guardian_id,
        expires_at=data.booking_closes_at,
    )


def slots_offered_in(page: str) -> list[str]:
    """The slot ids a rendered booking page lets the guardian choose, in page order."""
    return [unescape(value) for value in _SLOT_CHOICE.findall(page)]


async def open_booking(responses: RunningResponses, token: str) -> httpx.Response:
    return await responses.client.get(f"/b/{token}")


async def book(responses: RunningResponses, token: str, slot_id: str) -> httpx.Response:
    """Open the page and book `slot_id` with its form, as a parent's browser would."""
    page = await open_booking(responses, token)
    form = {"proof": proof_in(page.text), "action": "book", "slot": slot_id}
    return await responses.client.post(f"/b/{token}", data=form)


async def cancel_booking(responses: RunningResponses, token: str) -> httpx.Response:
    page = await open_booking(responses, token)
    return await responses.client.post(f"/b/{token}", data={"proof": proof_in(page.text), "action": "cancel"})
