"""What both guardians are sent when a development talk is booked, moved or cancelled: an email with a calendar
file that adds, replaces or removes the one entry for the pupil's talk, and a short SMS; each change once."""

from __future__ import annotations

import email
import json
from datetime import UTC, timedelta
from email import policy
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar

from notify_responses.settings import ResponsesSettings
from notify_responses.talks_testing import book, booking_link_for, cancel_booking, open_booking
from notify_responses.testing import RunningResponses, proof_in
from notify_shared import samples
from notify_shared.contract import TalksOffered
from notify_shared.samples import SAMPLE_NOW

pytestmark = pytest.mark.kafka

MOTHER, FATHER = "guardian1@example.no", "guardian2@example.no"


def _offer(**overrides: Any) -> TalksOffered:
    fields: dict[str, Any] = {"opens_at": SAMPLE_NOW - timedelta(days=1), "time": SAMPLE_NOW - timedelta(days=2)}
    return samples.talks_offered(**(fields | overrides))


def _emails(settings: ResponsesSettings) -> list[Message]:
    directory = settings.outbox_dir / "email"
    if not directory.exists():
        return []
    paths = sorted(directory.glob("*.eml"), key=lambda path: path.stat().st_mtime_ns)
    return [email.message_from_bytes(path.read_bytes(), policy=policy.default) for path in paths]


def _sms(settings: ResponsesSettings) -> list[dict[str, Any]]:
    sms_file: Path = settings.outbox_dir / "sms.jsonl"
    if not sms_file.exists():
        return []
    return [json.loads(line) for line in sms_file.read_text(encoding="utf-8").splitlines()]


def _calendar_of(message: Message) -> Calendar:
    # The calendar goes both inline (for calendar clients) and as a file; both are the same.
    parts = [part for part in message.walk() if part.get_content_type() == "text/calendar"]
    assert parts
    part = parts[0]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return Calendar.from_ical(payload)


def _event_of(calendar: Calendar) -> Any:
    (event,) = calendar.walk("VEVENT")
    return event


def _text_of(message: Message) -> str:
    (part,) = [part for part in message.walk() if part.get_content_type() == "text/plain"]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8")


async def test_a_booking_sends_both_guardians_an_email_with_the_calendar_entry_and_an_sms(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    event = _offer()
    await responses.runtime.talks.apply_offer(event)
    slot = event.data.slots[2]

    await book(responses, booking_link_for(settings, event), slot.slot_id)

    emails = _emails(settings)
    assert sorted(message["To"] for message in emails) == [MOTHER, FATHER]
    for message in emails:
        assert message["Subject"] == "Samtalen er bestilt"
        assert "Utviklingssamtale for Emma" in _text_of(message)
        calendar = _calendar_of(message)
        assert str(calendar["METHOD"]) == "REQUEST"
        entry = _event_of(calendar)
        assert str(entry["UID"]) == "talk-r-2026h-7b-p-77120@nor-0301-bjolsen.notify"
        assert int(entry["SEQUENCE"]) == 0
        assert entry.decoded("DTSTART").astimezone(UTC) == slot.starts_at.astimezone(UTC)
        assert entry.decoded("DTEND").astimezone(UTC) == slot.ends_at.astimezone(UTC)
    texts = {sms["to"]: sms["text"] for sms in _sms(settings)}
    assert sorted(texts) == ["+4790000001", "+4790000002"]
    assert all("Samtalen er bestilt" in text and "14:40" in text for text in texts.values())


async def test_a_move_raises_the_sequence_of_the_same_entry_and_a_cancellation_removes_it(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    event = _offer()
    await responses.runtime.talks.apply_offer(event)
    first, second = event.data.slots[0], event.data.slots[5]
    mother, father = booking_link_for(settings, event, guardian=0), booking_link_for(settings, event, guardian=1)

    await book(responses, mother, first.slot_id)
    await book(responses, father, second.slot_id)
    await cancel_booking(responses, mother)

    emails = _emails(settings)
    assert len(emails) == 6
    by_kind = [(str(_calendar_of(m)["METHOD"]), int(_event_of(_calendar_of(m))["SEQUENCE"])) for m in emails]
    assert sorted(by_kind) == [
        ("CANCEL", 2),
        ("CANCEL", 2),
        ("REQUEST", 0),
        ("REQUEST", 0),
        ("REQUEST", 1),
        ("REQUEST", 1),
    ]
    assert len({str(_event_of(_calendar_of(m))["UID"]) for m in emails}) == 1
    moved = [m for m in emails if int(_event_of(_calendar_of(m))["SEQUENCE"]) == 1]
    assert all(
        _event_of(_calendar_of(m)).decoded("DTSTART").astimezone(UTC) == second.starts_at.astimezone(UTC) for m in moved
    )
    assert all(m["Subject"].startswith("Ny tid:") for m in moved)
    cancelled = [m for m in emails if str(_calendar_of(m)["METHOD"]) == "CANCEL"]
    assert all(m["Subject"] == "Samtalen er avbestilt" for m in cancelled)
    assert all(str(_event_of(_calendar_of(m))["STATUS"]) == "CANCELLED" for m in cancelled)
    assert len(_sms(settings)) == 6


async def test_the_same_form_sent_twice_confirms_the_booking_once(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    event = _offer()
    await responses.runtime.talks.apply_offer(event)
    token = booking_link_for(settings, event)
    page = await open_booking(responses, token)
    form = {"proof": proof_in(page.text), "action": "book", "slot": event.data.slots[1].slot_id}

    first = await responses.client.post(f"/b/{token}", data=form)
    again = await responses.client.post(f"/b/{token}", data=form)

    assert (first.status_code, again.status_code) == (200, 200)
    assert len(_emails(settings)) == 2
    assert len(_sms(settings)) == 2


async def test_a_confirmation_the_ledger_already_holds_is_not_sent_again(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    event = _offer()
    await responses.runtime.talks.apply_offer(event)
    captured: list[Any] = []
    confirmer = responses.runtime.talk_confirmer
    assert confirmer is not None
    original = confirmer.confirm

    async def remembering(change: Any) -> int:
        captured.append(change)
        return await original(change)

    confirmer.confirm = remembering  # type: ignore[method-assign]
    await book(responses, booking_link_for(settings, event), event.data.slots[1].slot_id)

    # A retry of the same change (another replica, a repeated hand-over) finds its claims in the ledger.
    await original(captured[0])

    assert len(_emails(settings)) == 2
    assert len(_sms(settings)) == 2


async def test_a_withdrawn_booked_slot_tells_both_guardians_the_talk_is_cancelled(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    event = _offer()
    await responses.runtime.talks.apply_offer(event)
    withdrawn = event.data.slots[0]
    await book(responses, booking_link_for(settings, event), withdrawn.slot_id)

    later = _offer(event_id="offer-2", slots=list(event.data.slots[1:]), time=SAMPLE_NOW - timedelta(hours=1))
    await responses.runtime.talks.apply_offer(later)

    cancelled = [m for m in _emails(settings) if str(_calendar_of(m)["METHOD"]) == "CANCEL"]
    assert sorted(m["To"] for m in cancelled) == [MOTHER, FATHER]
    assert all(int(_event_of(_calendar_of(m))["SEQUENCE"]) == 1 for m in cancelled)
    assert len(_sms(settings)) == 4


async def test_a_guardian_without_parental_responsibility_is_sent_nothing(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    (pupil, *_) = samples.sample_talk_pupils()
    mother, father = pupil.guardians
    without = father.model_copy(update={"has_parental_responsibility": False})
    event = _offer(pupils=[pupil.model_copy(update={"guardians": (mother, without)})])
    await responses.runtime.talks.apply_offer(event)

    await book(responses, booking_link_for(settings, event), event.data.slots[0].slot_id)

    assert [m["To"] for m in _emails(settings)] == [MOTHER]
    assert [sms["to"] for sms in _sms(settings)] == ["+4790000001"]
