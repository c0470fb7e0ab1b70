"""The booking invitation: when booking opens, each guardian who may book gets their own link by email and SMS,
once, whatever the number of replicas; guardians added later are invited too, and SMS wait for the morning."""

from __future__ import annotations

import email
import json
import re
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage, Message
from typing import Any

import pytest
import sqlalchemy as sa

from notify_responses.settings import ResponsesSettings
from notify_responses.talks_invitations import BookingInviter, invited
from notify_responses.talks_testing import open_booking
from notify_responses.testing import RunningResponses
from notify_shared import samples
from notify_shared.contract import TalksOffered
from notify_shared.samples import OSLO, SAMPLE_NOW
from notify_shared.testing.clocks import SettableClock

pytestmark = pytest.mark.kafka

_LINK = re.compile(r"https://\S+/b/([A-Za-z0-9_-]+)")


def _offer(**overrides: Any) -> TalksOffered:
    fields: dict[str, Any] = {"opens_at": SAMPLE_NOW - timedelta(days=1), "time": SAMPLE_NOW - timedelta(days=2)}
    return samples.talks_offered(**(fields | overrides))


def _inviter(responses: RunningResponses) -> BookingInviter:
    inviter = responses.runtime.talk_inviter
    assert inviter is not None
    return inviter


def _emails(settings: ResponsesSettings) -> list[Message]:
    directory = settings.outbox_dir / "email"
    if not directory.exists():
        return []
    return [email.message_from_bytes(path.read_bytes(), policy=policy.default) for path in directory.glob("*.eml")]


def _text_of(message: Message) -> str:
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def _sms(settings: ResponsesSettings) -> list[dict[str, Any]]:
    sms_file = settings.outbox_dir / "sms.jsonl"
    if not sms_file.exists():
        return []
    return [json.loads(line) for line in sms_file.read_text(encoding="utf-8").splitlines()]


async def test_when_booking_opens_each_guardian_gets_their_own_link_by_email_and_sms(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    event = _offer()
    await responses.runtime.talks.apply_offer(event)

    await _inviter(responses).invite_due()

    emails = _emails(settings)
    assert sorted(str(m["To"]) for m in emails) == [f"guardian{n}@example.no" for n in (1, 2, 3, 4)]
    assert (
        sorted(str(m["Subject"]) for m in emails)
        == ["Utviklingssamtale for Emma"] * 2 + ["Utviklingssamtale for Noah"] * 2
    )
    for message in emails:
        text = _text_of(message)
        assert "inviterer deg til utviklingssamtale." in text
        assert "Velg en tid" in text
        (token,) = _LINK.findall(text)
        page = await open_booking(responses, token)
        assert page.status_code == 200
        assert str(message["Subject"]).removeprefix("Utviklingssamtale for ") in page.text
    texts = {sms["to"]: sms["text"] for sms in _sms(settings)}
    assert sorted(texts) == ["+4790000001", "+4790000002", "+4790000003", "+4790000004"]
    assert all(len(_LINK.findall(text)) == 1 for text in texts.values())
    assert len({_LINK.findall(text)[0] for text in texts.values()}) == 4


async def test_each_guardian_is_invited_once_even_when_two_replicas_race(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    await responses.runtime.talks.apply_offer(_offer())
    await _inviter(responses).invite_due()
    # A second replica that has not seen the first one's notes: the ledger still holds every claim.
    async with responses.runtime.store.engine.begin() as connection:
        await connection.execute(sa.delete(invited))

    again = await _inviter(responses).invite_due()

    assert again == 4
    assert len(_emails(settings)) == 4
    assert len(_sms(settings)) == 4
    assert await _inviter(responses).invite_due() == 0


async def test_a_window_that_opens_later_is_waited_for_and_a_pupil_added_later_is_invited(
    settings: ResponsesSettings, responses: RunningResponses, clock: SettableClock
) -> None:
    opens = SAMPLE_NOW + timedelta(days=1)
    event = _offer(opens_at=opens, pupils=samples.sample_talk_pupils(1))
    await responses.runtime.talks.apply_offer(event)

    before = await _inviter(responses).invite_due()
    clock.now = opens + timedelta(minutes=1)
    at_opening = await _inviter(responses).invite_due()
    later = _offer(
        event_id="offer-2", opens_at=opens, pupils=samples.sample_talk_pupils(2), time=SAMPLE_NOW - timedelta(hours=1)
    )
    await responses.runtime.talks.apply_offer(later)
    after_the_new_offer = await _inviter(responses).invite_due()

    assert (before, at_opening, after_the_new_offer) == (0, 2, 2)
    assert sorted(str(m["To"]) for m in _emails(settings)) == [f"guardian{n}@example.no" for n in (1, 2, 3, 4)]


async def test_at_night_the_email_goes_at_once_and_the_sms_waits_for_the_morning(
    settings: ResponsesSettings, responses: RunningResponses, clock: SettableClock
) -> None:
    night = datetime(2026, 11, 20, 22, 30, tzinfo=OSLO)
    clock.now = night
    await responses.runtime.talks.apply_offer(_offer(pupils=samples.sample_talk_pupils(1)))

    await _inviter(responses).invite_due()

    assert len(_emails(settings)) == 2
    assert _sms(settings) == []


async def test_a_guardian_without_parental_responsibility_gets_no_invitation(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    (pupil,) = samples.sample_talk_pupils(1)
    mother, father = pupil.guardians
    without = father.model_copy(update={"has_parental_responsibility": False})
    await responses.runtime.talks.apply_offer(
        _offer(pupils=[pupil.model_copy(update={"guardians": (mother, without)})])
    )

    await _inviter(responses).invite_due()

    assert [str(m["To"]) for m in _emails(settings)] == ["guardian1@example.no"]
    assert [sms["to"] for sms in _sms(settings)] == ["+4790000001"]
