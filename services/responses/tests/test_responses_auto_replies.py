"""Automatic SMS answers: help for a reply that is no answer, a confirmation of one that is, never more than one a
day per number, never to an auto-responder, and held through quiet hours."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from notify_responses.auto_replies import AutoReplyMode, kind_of, looks_automatic
from notify_responses.auto_reply_cap import DailyAutoReplyCap
from notify_responses.service import RecordResult, SmsReplyOutcome
from notify_responses.settings import ResponsesSettings
from notify_responses.testing import PUBLIC_BASE_URL, RunningResponses, isolated_settings, link_for, running_responses
from notify_shared import samples
from notify_shared.contract import MeetingCreated, Rsvp, UnrecognisedReason
from notify_shared.delivery_reports.signatures import notify_signature_headers
from notify_shared.ledger.database import create_engine
from notify_shared.samples import OSLO
from notify_shared.testing.clocks import SettableClock
from notify_shared.testing.kafka import EventPublisher, TopicReader
from notify_shared.testing.waiting import wait_until

SECRET = "inbound-sms-secret-0123456789"
POLISH_NUMBER = "+4791000004"
NORWEGIAN_NUMBER = "+4791000001"


@pytest.mark.parametrize(
    "text",
    [
        "Automatisk svar: Jeg er på ferie til 1. desember.",
        "I'm driving right now - I'll get back to you.",
        "Out of office until Monday",
        "Dette er et autosvar",
        "Automatyczna odpowiedź: jestem na urlopie",
        "STOP",
        f"Svar JA eller NEI, eller her: {PUBLIC_BASE_URL}/r/axxxxxxxx",
    ],
)
def test_a_message_that_looks_automatic_is_never_answered(text: str) -> None:
    assert looks_automatic(text, PUBLIC_BASE_URL)


@pytest.mark.parametrize("text", ["Hvor er møtet?", "ja", "Kommer ikke, er syk", "Stopper det klokka 19?", ""])
def test_a_parents_own_words_do_not_look_automatic(text: str) -> None:
    assert not looks_automatic(text, PUBLIC_BASE_URL)


@pytest.mark.parametrize(
    ("outcome", "mode", "kind"),
    [
        (SmsReplyOutcome(RecordResult.RECORDED, answer=Rsvp.ACCEPTED), AutoReplyMode.HELP_AND_CONFIRMATION, "recorded"),
        (SmsReplyOutcome(RecordResult.RECORDED, answer=Rsvp.ACCEPTED), AutoReplyMode.HELP, None),
        (SmsReplyOutcome(RecordResult.UNCHANGED, answer=Rsvp.ACCEPTED), AutoReplyMode.HELP_AND_CONFIRMATION, None),
        (
            SmsReplyOutcome(RecordResult.UNRECOGNISED, reason=UnrecognisedReason.NOT_UNDERSTOOD),
            AutoReplyMode.HELP,
            "not_understood",
        ),
        (
            SmsReplyOutcome(RecordResult.UNRECOGNISED, reason=UnrecognisedReason.NO_OPEN_INVITATION),
            AutoReplyMode.HELP,
            "nothing_open",
        ),
        (
            SmsReplyOutcome(RecordResult.UNRECOGNISED, reason=UnrecognisedReason.UNKNOWN_NUMBER),
            AutoReplyMode.HELP_AND_CONFIRMATION,
            None,
        ),
        (
            SmsReplyOutcome(RecordResult.UNRECOGNISED, reason=UnrecognisedReason.NOT_UNDERSTOOD),
            AutoReplyMode.OFF,
            None,
        ),
    ],
)
def test_what_each_reply_is_answered_with(outcome: SmsReplyOutcome, mode: AutoReplyMode, kind: str | None) -> None:
    decided = kind_of(outcome, mode)
    assert (decided.value if decided is not None else None) == kind


async def test_two_replicas_racing_for_a_numbers_daily_slot_take_it_once(database_url: str) -> None:
    # Two engines on one database stand for two replicas; each tries ten times at once.
    replicas = [create_engine(database_url), create_engine(database_url)]
    try:
        caps = [DailyAutoReplyCap(engine) for engine in replicas]
        await asyncio.gather(*(cap.create_schema() for cap in caps))
        day = date(2026, 11, 20)
        at = samples.SAMPLE_NOW

        taken = await asyncio.gather(
            *(cap.take(POLISH_NUMBER, day, kind="not_understood", at=at) for cap in caps for _ in range(10))
        )
        next_day = await caps[1].take(POLISH_NUMBER, day + timedelta(days=1), kind="recorded", at=at)
        other_number = await caps[0].take(NORWEGIAN_NUMBER, day, kind="recorded", at=at)
    finally:
        for engine in replicas:
            await engine.dispose()

    assert taken.count(True) == 1
    assert next_day
    assert other_number


def _settings(kafka_bootstrap: str, tmp_path: Path, **overrides: Any) -> ResponsesSettings:
    return isolated_settings(
        kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path, delivery_report_secret=SECRET, **overrides
    )


def _invitation() -> MeetingCreated:
    return samples.meeting_created(
        recipients=[
            samples.sample_guardian(1, phone=NORWEGIAN_NUMBER),
            samples.sample_guardian(4, language="pl", phone=POLISH_NUMBER),
            samples.sample_guardian(2, language="ar", phone="+4791000002"),
        ]
    )


async def _invite(settings: ResponsesSettings, responses: RunningResponses, event: MeetingCreated) -> None:
    async with EventPublisher(settings.kafka_bootstrap_servers, settings.topics) as publisher:
        await publisher.publish(event)
    token = link_for(settings, event)

    async def known() -> bool:
        return (await responses.open(token)).status_code == 200

    await wait_until(known, within=30, what="the meeting known to the service")


async def _reply(responses: RunningResponses, message_id: str, sender: str, text: str) -> dict[str, Any]:
    body = json.dumps({"id": message_id, "from": sender, "text": text}).encode()
    headers = {"Content-Type": "application/json"} | notify_signature_headers(SECRET, body)
    response = await responses.client.post("/sms/inbound/webhook", content=body, headers=headers)
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


def _sms_sent(settings: ResponsesSettings) -> list[dict[str, Any]]:
    sms_file = settings.outbox_dir / "sms.jsonl"
    if not sms_file.exists():
        return []
    return [json.loads(line) for line in sms_file.read_text(encoding="utf-8").splitlines()]


@pytest.mark.kafka
async def test_each_number_gets_one_automatic_answer_a_day_in_its_language(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_bootstrap, tmp_path)
    clock = SettableClock(samples.SAMPLE_NOW)
    async with running_responses(settings, clock=clock) as responses:
        await _invite(settings, responses, _invitation())

        replies = [
            await _reply(responses, "m1", POLISH_NUMBER, "Gdzie jest spotkanie?"),
            await _reply(responses, "m2", POLISH_NUMBER, "Gdzie???"),  # the same day: no second help
            await _reply(responses, "m3", POLISH_NUMBER, "tak"),  # recorded, but no confirmation that day
            await _reply(responses, "m4", NORWEGIAN_NUMBER, "Ja, jeg kommer"),
            await _reply(responses, "m5", NORWEGIAN_NUMBER, "JA"),  # unchanged: nothing to confirm
            await _reply(responses, "m6", "+4791000002", "Automatisk svar: jeg er på ferie"),
            await _reply(responses, "m7", "+4798765432", "JA"),  # never invited: no answer to strangers
        ]
        clock.now += timedelta(days=1)
        next_day = await _reply(responses, "m8", POLISH_NUMBER, "nie")

        async with TopicReader(settings.kafka_bootstrap_servers, settings.topics.notification_status) as reader:

            async def both_sent() -> bool:
                statuses = await reader.read_to_end()
                return sum(bool(record["data"]["status"] == "sent") for record in statuses) >= 3

            await wait_until(both_sent, within=30, what="the automatic answers reported sent")
            statuses = [record["data"] for record in await reader.read_to_end()]

    assert [(reply["outcome"], reply.get("auto_reply")) for reply in replies] == [
        ("unrecognised", "not_understood"),
        ("unrecognised", None),
        ("recorded", None),
        ("recorded", "recorded"),
        ("unchanged", None),
        ("unrecognised", None),
        ("unrecognised", None),
    ]
    assert next_day["auto_reply"] == "recorded"
    sent = [(sms["to"], sms["from"], sms["text"]) for sms in _sms_sent(settings)]
    assert sent == [
        (
            POLISH_NUMBER,
            "Bjolsen",
            "Nie zrozumieliśmy odpowiedzi. Prosimy odpisać TAK, NIE lub MOŻE.\nPozdrawiamy, Bjølsen skole",
        ),
        (NORWEGIAN_NUMBER, "Bjolsen", "Vi har registrert svaret ditt: kommer.\nHilsen Bjølsen skole"),
        (POLISH_NUMBER, "Bjolsen", "Odnotowaliśmy odpowiedź: nie, nie przyjdę.\nPozdrawiamy, Bjølsen skole"),
    ]
    # The operator sees them like any notification: ids, channel, template and status, no number or text.
    assert {(status["channel"], status["template"], status["status"]) for status in statuses} == {
        ("sms", "sms_reply", "sent")
    }
    assert POLISH_NUMBER not in json.dumps(statuses)


@pytest.mark.kafka
async def test_an_automatic_answer_waits_for_the_end_of_quiet_hours(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = _settings(kafka_bootstrap, tmp_path)
    clock = SettableClock(datetime(2026, 11, 20, 22, 30, tzinfo=OSLO))
    async with running_responses(settings, clock=clock) as responses:
        await _invite(settings, responses, _invitation())

        late = await _reply(responses, "m1", NORWEGIAN_NUMBER, "Hæ?")
        held = _sms_sent(settings)
        clock.now = datetime(2026, 11, 21, 7, 0, tzinfo=OSLO)
        assert responses.runtime.retries is not None
        await responses.runtime.retries.run_due()
        morning = _sms_sent(settings)

    assert late["auto_reply"] == "not_understood"
    assert held == []
    assert [sms["text"] for sms in morning] == [
        "Vi forstod ikke svaret ditt. Svar JA, NEI eller KANSKJE.\nHilsen Bjølsen skole"
    ]


@pytest.mark.kafka
async def test_with_automatic_answers_off_no_reply_is_answered(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = _settings(kafka_bootstrap, tmp_path, sms_auto_replies="off")
    async with running_responses(settings, clock=SettableClock(samples.SAMPLE_NOW)) as responses:
        await _invite(settings, responses, _invitation())

        replies = [
            await _reply(responses, "m1", POLISH_NUMBER, "Gdzie jest spotkanie?"),
            await _reply(responses, "m2", NORWEGIAN_NUMBER, "JA"),
        ]

    assert [reply["outcome"] for reply in replies] == ["unrecognised", "recorded"]
    assert _sms_sent(settings) == []
