"""The answer page as a parent meets it, and as a scanner or an attacker would."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from notify_responses.settings import ResponsesSettings
from notify_responses.testing import RunningResponses, isolated_settings, link_for, running_responses
from notify_shared import samples
from notify_shared.contract import MeetingCreated
from notify_shared.rendering import render_notification
from notify_shared.rendering.previews import sample_context
from notify_shared.testing.clocks import SettableClock
from notify_shared.testing.kafka import EventPublisher, TopicReader
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka


async def _invite(settings: ResponsesSettings, responses: RunningResponses, event: MeetingCreated) -> str:
    """Publish the meeting and wait until the service lets its first guardian answer; that guardian's token."""
    async with EventPublisher(settings.kafka_bootstrap_servers, settings.topics) as publisher:
        await publisher.publish(event)
    token = link_for(settings, event)

    async def page_open() -> bool:
        return (await responses.open(token)).status_code == 200

    await wait_until(page_open, within=30, what="the meeting known to the service")
    return token


async def _rsvp_events(settings: ResponsesSettings, responses: RunningResponses, expected: int) -> list[dict[str, Any]]:
    """meeting.rsvp on the topic, once the outbox has emptied."""

    await wait_until(lambda: _outbox_waiting(responses), within=30, what="the outbox emptied")
    async with TopicReader(settings.kafka_bootstrap_servers, settings.topics.meeting_rsvp) as reader:
        records = await reader.read_to_end()
    assert len(records) == expected, json.dumps(records, indent=1)
    return records


async def _outbox_waiting(responses: RunningResponses) -> bool:
    return await responses.runtime.store.waiting() == 0


async def test_a_parent_answers_coming_and_the_school_gets_one_rsvp(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    event = samples.meeting_created(recipients=[samples.sample_guardian(1, language="nb")])
    token = await _invite(settings, responses, event)

    page = await responses.open(token)
    assert 'lang="nb" dir="ltr"' in page.text
    assert "Foreldremøte 7B" in page.text
    assert "Rom 204, Bjølsen skole" in page.text

    answered = await responses.answer(token, answer="accepted", comment="Vi kommer begge to.")

    assert answered.status_code == 200
    (record,) = await _rsvp_events(settings, responses, expected=1)
    assert record["type"] == "meeting.rsvp"
    assert record["data"] == {
        "school_id": "nor-0301-bjolsen",
        "meeting_id": "m-2026-7b-foreldremote",
        "guardian_id": "g-1001",
        "answer": "accepted",
        "comment": "Vi kommer begge to.",
        "answered_at": record["data"]["answered_at"],
        "via": "web",
    }


async def _answers_on_topic(settings: ResponsesSettings) -> list[dict[str, Any]]:
    async with TopicReader(settings.kafka_bootstrap_servers, settings.topics.meeting_rsvp) as reader:
        return await reader.read_to_end()


async def test_a_scanner_opening_the_link_records_nothing(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    token = await _invite(settings, responses, samples.meeting_created())

    for _ in range(3):
        assert (await responses.open(token)).status_code == 200
    assert (await responses.client.head(f"/r/{token}")).status_code in {200, 405}

    assert await responses.runtime.store.waiting() == 0
    assert await _answers_on_topic(settings) == []


async def test_sending_the_same_answer_again_changes_nothing_and_a_change_of_mind_is_published(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    token = await _invite(settings, responses, samples.meeting_created())

    await responses.answer(token, answer="accepted")
    proof = responses.runtime.keys.form_proof(token)
    replayed = await responses.client.post(f"/r/{token}", data={"proof": proof, "answer": "accepted"})
    changed = await responses.answer(token, answer="declined")

    assert replayed.status_code == 200
    assert changed.status_code == 200
    records = await _rsvp_events(settings, responses, expected=2)
    assert [record["data"]["answer"] for record in records] == ["accepted", "declined"]
    page = await responses.open(token)
    assert 'value="declined" checked' in page.text


@pytest.mark.parametrize(
    "tampered",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),
        lambda token: token[:-1],
        lambda token: token + "x",
        lambda token: "",
        lambda token: "..%2F..%2Fetc%2Fpasswd",
        lambda token: "x" * 10_000,
        lambda token: token + "/extra",
    ],
    ids=["one-character-changed", "cut-short", "lengthened", "empty", "path", "10000-characters", "with-a-path"],
)
async def test_a_tampered_link_gets_the_same_friendly_page_as_one_that_never_existed(
    settings: ResponsesSettings, responses: RunningResponses, tampered: Any
) -> None:
    event = samples.meeting_created()
    token = await _invite(settings, responses, event)
    unknown = link_for(settings, samples.meeting_created(meeting=samples.sample_meeting(meeting_id="m-never-sent")))

    tampered_page = await responses.open(tampered(token))
    unknown_page = await responses.open(unknown)

    assert tampered_page.status_code == unknown_page.status_code == 404
    assert tampered_page.text == unknown_page.text
    assert "Denne lenken virker ikke" in tampered_page.text
    assert "Bjølsen" not in tampered_page.text
    assert "Foreldremøte" not in tampered_page.text


async def test_a_link_signed_with_a_foreign_key_is_refused(
    settings: ResponsesSettings, responses: RunningResponses, kafka_bootstrap: str, tmp_path: Any
) -> None:
    event = samples.meeting_created()
    await _invite(settings, responses, event)
    foreign_settings = settings.model_copy(
        update={"answer_link_keys": {"a": SecretStr("another-deployments-key-0123456789abcdef")}}
    )

    page = await responses.open(link_for(foreign_settings, event))

    assert page.status_code == 404
    assert "Denne lenken virker ikke" in page.text


async def test_once_the_meeting_has_started_the_link_says_so_in_the_guardians_language(
    settings: ResponsesSettings, responses: RunningResponses, clock: SettableClock
) -> None:
    event = samples.meeting_created(recipients=[samples.sample_guardian(4, language="pl")])
    token = await _invite(settings, responses, event)

    clock.now = event.data.meeting.starts_at + timedelta(minutes=1)
    page = await responses.open(token)
    posted = await responses.client.post(f"/r/{token}", data={"answer": "accepted"})

    assert page.status_code == posted.status_code == 410
    assert 'lang="pl"' in page.text
    assert "Odpowiedzi nie są już przyjmowane" in page.text
    assert await responses.runtime.store.waiting() == 0


async def test_a_cancelled_meeting_takes_no_answers(settings: ResponsesSettings, responses: RunningResponses) -> None:
    event = samples.meeting_created()
    token = await _invite(settings, responses, event)
    async with EventPublisher(settings.kafka_bootstrap_servers, settings.topics) as publisher:
        await publisher.publish(samples.meeting_cancelled())

    async def closed() -> bool:
        return (await responses.open(token)).status_code == 410

    await wait_until(closed, within=30, what="the cancellation known to the service")
    assert "Møtet er avlyst" in (await responses.open(token)).text


async def test_a_post_without_the_forms_value_or_from_another_site_records_nothing(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    token = await _invite(settings, responses, samples.meeting_created())

    without_value = await responses.client.post(f"/r/{token}", data={"answer": "declined"})
    cross_site = await responses.answer(token, answer="declined", headers={"Origin": "https://evil.example"})
    wrong_value = await responses.client.post(f"/r/{token}", data={"answer": "declined", "proof": "forged"})

    for refused in (without_value, cross_site, wrong_value):
        assert refused.status_code == 403
        assert "Svaret ditt ble ikke sendt. Send det på nytt." in refused.text
    assert await responses.runtime.store.waiting() == 0
    assert await _answers_on_topic(settings) == []


async def test_the_page_and_confirmation_are_in_arabic_right_to_left(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    event = samples.meeting_created(recipients=[samples.sample_guardian(3, language="ar")])
    token = await _invite(settings, responses, event)

    page = await responses.open(token)
    answered = await responses.answer(token, answer="accepted", interpreter="yes", interpreter_language="ar")

    assert 'lang="ar" dir="rtl"' in page.text
    assert 'value="ar" lang="ar" selected' in page.text
    assert "هل ستحضرون؟" in page.text
    assert "لقد أجبتم بأنكم ستحضرون." in answered.text
    assert "العربية" in answered.text
    (record,) = await _rsvp_events(settings, responses, expected=1)
    assert record["data"]["interpreter_language"] == "ar"


async def test_the_confirmation_in_polish_says_what_was_recorded(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    event = samples.meeting_created(recipients=[samples.sample_guardian(4, language="pl")])
    token = await _invite(settings, responses, event)

    answered = await responses.answer(token, answer="tentative", comment="Spróbuję przyjść po pracy.")

    assert 'lang="pl" dir="ltr"' in answered.text
    assert "Odpowiedź została wysłana do szkoły" in answered.text
    assert "Zapisana odpowiedź: jeszcze nie wiem." in answered.text
    assert "Spróbuję przyjść po pracy." in answered.text


# The informal "ty" a school does not use to parents: verbs and pronouns of the second person singular.
_POLISH_INFORMAL = ("przyjdziesz", "Twoja", "Twój", "Sprawdź", "Wybierz", "Zaznacz", "Możesz", "Daj znać", "Odpisz")


async def test_the_polish_page_and_answer_lines_address_parents_formally(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    event = samples.meeting_created(recipients=[samples.sample_guardian(4, language="pl")])
    token = await _invite(settings, responses, event)

    page = (await responses.open(token)).text
    unanswered = (await responses.answer(token)).text
    answered = (await responses.answer(token, answer="accepted")).text
    lines = [
        render_notification(template, "pl", "nb", sample_context(template, "pl") | extra)
        for template, extra in (
            ("meeting_invitation", {}),
            ("meeting_update", {}),
            ("meeting_reminder", {"guardian": samples.sample_guardian(4, language="pl", rsvp="accepted")}),
        )
    ]

    assert "Czy uda się przyjść?" in page
    assert "Prosimy zaznaczyć odpowiedź" in unanswered
    assert "Zapisana odpowiedź: tak, przyjdę." in answered
    assert "Prosimy o SMS: TAK lub NIE, albo tutaj:" in lines[0].sms
    assert "Prosimy o informację, czy uda się przyjść:" in lines[1].text
    assert "Obecność na spotkaniu jest już potwierdzona." in lines[2].text
    for text in (page, unanswered, answered, *(line.text + line.sms for line in lines)):
        assert not [word for word in _POLISH_INFORMAL if word in text]


async def test_a_form_with_no_answer_or_a_long_comment_is_shown_again_with_what_to_fix(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    token = await _invite(settings, responses, samples.meeting_created())

    no_answer = await responses.answer(token, comment="Hei")
    too_long = await responses.answer(token, answer="accepted", comment="x" * 10_000)

    assert no_answer.status_code == too_long.status_code == 400
    assert '<a href="#answer-accepted">Velg om du kommer</a>' in no_answer.text
    assert ">Hei</textarea>" in no_answer.text
    assert '<a href="#comment">Skriv høyst 500 tegn</a>' in too_long.text
    assert await responses.runtime.store.waiting() == 0


async def test_markup_and_control_characters_in_a_comment_reach_nobody_as_markup(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    token = await _invite(settings, responses, samples.meeting_created())

    answered = await responses.answer(
        token, answer="accepted", comment='<script>alert("x")</script>\x00\x1b[31m\u202eok\r\nlinje to'
    )

    assert answered.status_code == 200
    assert "<script>" not in answered.text
    assert "&lt;script&gt;" in answered.text
    (record,) = await _rsvp_events(settings, responses, expected=1)
    assert record["data"]["comment"] == '<script>alert("x")</script>[31mok\nlinje to'


async def test_every_page_carries_the_security_headers(
    settings: ResponsesSettings, responses: RunningResponses
) -> None:
    token = await _invite(settings, responses, samples.meeting_created())

    for response in (
        await responses.open(token),
        await responses.open("not-a-token"),
        await responses.answer(token, answer="accepted"),
        await responses.client.get("/static/answer.css"),
    ):
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "script-src" not in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in (await responses.open(token)).text


async def test_answers_from_one_link_are_rate_limited(
    kafka_bootstrap: str, tmp_path: Any, clock: SettableClock
) -> None:
    settings = isolated_settings(kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path, answers_per_link_per_hour=2)
    async with running_responses(settings, clock=clock) as responses:
        token = await _invite(settings, responses, samples.meeting_created())
        statuses = [
            (await responses.answer(token, answer=answer)).status_code
            for answer in ("accepted", "declined", "tentative")
        ]

        assert statuses == [200, 200, 429]
        metrics = (await responses.client.get("/metrics")).text
    assert 'notify_responses_rejected_links_total{reason="rate_limited",service="responses"} 1.0' in metrics
    assert token not in metrics


async def test_when_no_database_connection_frees_up_in_time_the_parent_is_asked_to_come_back(
    settings: ResponsesSettings, responses: RunningResponses, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = samples.meeting_created(recipients=[samples.sample_guardian(1)])
    token = await _invite(settings, responses, event)

    async def every_connection_taken(*args: object, **kwargs: object) -> None:
        # What SQLAlchemy raises when the pool had no connection to give within its timeout.
        raise PoolTimeoutError("QueuePool limit of size 5 overflow 10 reached")

    monkeypatch.setattr(responses.runtime.store, "invitation", every_connection_taken)
    busy = await responses.open(token)

    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "60"
    assert "Mange foreldre svarer akkurat nå" in busy.text
    assert "Vent noen minutter og prøv igjen." in busy.text
