"""Notices sent at once: a teacher's message (urgent, or for guardians who want every message as it comes) and
the same-day absence notice. Both carry their content; the absence notice never says why."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notify_shared.contract.absences import Lesson, Pupil
from notify_shared.contract.messages import PostedMessage
from notify_shared.contract.parties import Channel
from notify_shared.rendering import RenderedNotification, render_notification, sms_encoding, sms_segments
from notify_shared.rendering.environment import fit_sms, measured_segments

from .render_factories import LANGUAGES, OSLO, guardian, school, visible
from .test_render_html import _check
from .test_render_markdown import assert_no_active_content

BODY = (
    "Hei alle sammen!\n\n"
    "Fredag går vi til **Sognsvann**. Ta med:\n"
    "- matpakke og drikke\n"
    "- gode sko\n\n"
    "Påmelding: [skjema](https://bjolsen.osloskolen.no/tur). Spørsmål? Skriv til ola.laerer@osloskolen.no."
)
BODY_TEXT = (
    "Hei alle sammen!\n\n"
    "Fredag går vi til Sognsvann. Ta med:\n\n"
    "- matpakke og drikke\n"
    "- gode sko\n\n"
    "Påmelding: skjema (https://bjolsen.osloskolen.no/tur). Spørsmål? Skriv til ola.laerer@osloskolen.no."
)
LONG_BODY = " ".join(
    f"Punkt {number}: i neste uke starter vi med et nytt tema i naturfag, og vi trenger litt hjelp hjemmefra."
    for number in range(1, 16)
)
LESSONS = (
    Lesson(period=1, subject="Matematikk", starts_at=time(8, 30)),
    Lesson(period=2, subject="Norsk", starts_at=time(9, 30)),
    Lesson(period=3, subject="Kroppsøving", starts_at=time(10, 30)),
)
SUBJECTS: tuple[str, ...] = (
    "Matematikk",
    "Naturfag",
    "Samfunnsfag",
    "Kroppsøving",
    "Kunst og håndverk",
    "Engelsk",
    "KRLE",
)
REASON = "Syk med influensa, feber"

URGENT_PREFIX = {"nb": "Viktig: ", "nn": "Viktig: ", "en": "Important: "}
MESSAGE_LEAD = {
    "nb": "Ola Lærer ved Bjølsen skole har sendt en melding til foresatte i 7B.",
    "nn": "Ola Lærer ved Bjølsen skole har sendt ei melding til føresette i 7B.",
    "en": "Ola Lærer at Bjølsen skole has sent a message to the parents in 7B.",
}
ABSENCE_SENTENCE = {
    "nb": "Emma (7B) var ikke til stede i disse timene i dag, fredag 4. desember: "
    "1. time (Matematikk), 2. time (Norsk), 3. time (Kroppsøving).",
    "nn": "Emma (7B) var ikkje til stades i desse timane i dag, fredag 4. desember: "
    "1. time (Matematikk), 2. time (Norsk), 3. time (Kroppsøving).",
    "en": "Emma (7B) was not present for these lessons today, Friday 4 December: "
    "period 1 (Matematikk), period 2 (Norsk), period 3 (Kroppsøving).",
}
WHOLE_DAY = {
    "nb": "Emma (7B) var ikke på skolen i dag, fredag 4. desember.",
    "nn": "Emma (7B) var ikkje på skulen i dag, fredag 4. desember.",
    "en": "Emma (7B) was not at school today, Friday 4 December.",
}
CONTACT = {
    "nb": "Hvis dette er uventet, ta gjerne kontakt med skolen.",
    "nn": "Dersom dette er uventa, ta gjerne kontakt med skulen.",
    "en": "If this is unexpected, please contact the school.",
}
ABSENCE_SUBJECT = {
    "nb": "Fravær fredag 4. desember: Emma (7B)",
    "nn": "Fråvær fredag 4. desember: Emma (7B)",
    "en": "Absence on Friday 4 December: Emma (7B)",
}
CUT_NOTE = {
    "nb": "Hele meldingen er sendt til deg på e-post.",
    "nn": "Heile meldinga er sendt til deg på e-post.",
    "en": "The whole message has been sent to you by email.",
}
NO_EMAIL_NOTE = {
    "nb": "Meldingen er forkortet. Spør skolen om resten.",
    "nn": "Meldinga er forkorta. Spør skulen om resten.",
    "en": "The message is shortened. Ask the school for the rest.",
}


def posted_message(**overrides: Any) -> PostedMessage:
    values: dict[str, Any] = {
        "school": school(),
        "message_id": "msg-88213",
        "class_id": "c-7b",
        "class_name": "7B",
        "author_name": "Ola Lærer",
        "subject": "Tur til Sognsvann fredag",
        "body": BODY,
        "urgent": False,
        "posted_at": datetime(2026, 12, 2, 14, 5, tzinfo=OSLO),
        "recipients": (guardian(),),
    }
    return PostedMessage(**(values | overrides))


def pupil(**overrides: Any) -> Pupil:
    values: dict[str, Any] = {"pupil_id": "p-77120", "first_name": "Emma", "class_name": "7B"}
    return Pupil(**(values | overrides))


def message_notice(language: str = "nb", **overrides: Any) -> RenderedNotification:
    context: dict[str, object] = {
        "school": school(),
        "guardian": guardian(language=language),
        "message": posted_message(),
        "urgent": False,
    }
    return render_notification("message_notice", language, "nb", context | overrides)


def absence_notice(language: str = "nb", **overrides: Any) -> RenderedNotification:
    context: dict[str, object] = {
        "school": school(),
        "guardian": guardian(language=language),
        "pupil": pupil(),
        "date": date(2026, 12, 4),
        "lessons": LESSONS,
    }
    return render_notification("absence_notice", language, "nb", context | overrides)


# --- message_notice -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_message_notice_carries_the_whole_message(language: str) -> None:
    rendered = message_notice(language)

    assert rendered.language == language
    assert rendered.subject == "Tur til Sognsvann fredag"
    assert MESSAGE_LEAD[language] in rendered.text
    assert BODY_TEXT in rendered.text
    assert "**" not in rendered.text
    assert rendered.text.rstrip().endswith("Bjølsen skole.")
    assert "Ola Lærer\nBjølsen skole" in rendered.text
    parser = _check(rendered.html)
    assert {"h1", "ul", "li", "strong", "a"} <= parser.seen
    assert "<strong>Sognsvann</strong>" in rendered.html
    assert '<a href="https://bjolsen.osloskolen.no/tur"' in rendered.html
    assert '<a href="mailto:ola.laerer@osloskolen.no"' in rendered.html
    assert "logg inn" not in (rendered.text + rendered.sms).lower()
    assert "log in" not in (rendered.text + rendered.sms).lower()


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_urgent_message_says_so_in_the_subject_body_and_sms(language: str) -> None:
    rendered = message_notice(language, message=posted_message(urgent=True), urgent=True)

    assert rendered.subject == URGENT_PREFIX[language] + "Tur til Sognsvann fredag"
    assert rendered.sms.startswith(URGENT_PREFIX[language] + "Tur til Sognsvann fredag\n")
    assert f"<title>{URGENT_PREFIX[language]}Tur til Sognsvann fredag</title>" in rendered.html


def test_a_personal_message_without_a_class_is_addressed_to_the_guardian() -> None:
    rendered = message_notice("nn", message=posted_message(class_name=None, class_id=None, pupil_id="p-77120"))

    assert "Ola Lærer ved Bjølsen skole har sendt deg ei melding." in rendered.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_message_sms_is_the_content_itself_when_it_fits(language: str) -> None:
    rendered = message_notice(language, message=posted_message(body="Husk gymtøy og *innesko* i morgen."))

    assert rendered.sms.startswith("Tur til Sognsvann fredag\nHusk gymtøy og innesko i morgen.\n")
    assert "Ola Lærer, Bjølsen skole" in rendered.sms
    assert "..." not in rendered.sms
    assert CUT_NOTE[language] not in rendered.sms
    assert rendered.sms_segments == 1


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_long_message_is_cut_cleanly_within_three_segments(language: str) -> None:
    rendered = message_notice(language, message=posted_message(body=LONG_BODY))

    assert rendered.sms_encoding == "GSM-7"
    assert rendered.sms_segments == 3
    head, body, note, sign_off = rendered.sms.split("\n")
    assert head == "Tur til Sognsvann fredag"
    assert body.endswith("...")
    kept = body.removesuffix("...").rstrip()  # "… pakkeliste. ..." after a whole sentence
    assert LONG_BODY.startswith(kept)
    assert LONG_BODY[len(kept)] in " ,."  # cut between words, not inside one
    assert len(kept) > 250  # as much as fits, not a token line
    assert note == CUT_NOTE[language]
    assert sign_off.endswith("Ola Lærer, Bjølsen skole")
    assert LONG_BODY in rendered.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_cut_sms_points_to_the_email_only_when_there_is_one(language: str) -> None:
    no_email = guardian(language=language, email=None, channels=(Channel.SMS,))
    sms_only = guardian(language=language, channels=(Channel.SMS,))
    bad_email = guardian(language=language, email="not an address")

    for recipient in (no_email, sms_only, bad_email):
        rendered = message_notice(language, guardian=recipient, message=posted_message(body=LONG_BODY))
        assert CUT_NOTE[language] not in rendered.sms
        assert NO_EMAIL_NOTE[language] in rendered.sms
        assert rendered.sms_segments <= 3


def test_a_message_that_needs_ucs2_is_cut_to_three_ucs2_segments() -> None:
    rendered = message_notice("nb", message=posted_message(body="Husk juleavslutningen 🎄 på torsdag! " * 20))

    assert rendered.sms_encoding == "UCS-2"
    assert rendered.sms_segments <= 3
    assert "🎄" in rendered.sms
    assert "…" in rendered.sms


def test_one_enormous_word_is_still_cut_to_fit() -> None:
    rendered = message_notice("nb", message=posted_message(body="https://skole.no/" + "a" * 3000))

    assert rendered.sms_segments <= 3
    assert "..." in rendered.sms


def test_a_long_subject_and_body_still_fit() -> None:
    rendered = message_notice("en", message=posted_message(subject="Viktig informasjon " * 15, body=LONG_BODY))

    assert rendered.sms_segments <= 3
    assert rendered.sms.endswith("Kind regards, Ola Lærer, Bjølsen skole")


@pytest.mark.parametrize("language", LANGUAGES)
def test_hostile_message_text_is_shown_as_typed(language: str) -> None:
    hostile = "Svar {{ 7*7 }} {% for x in y %}x{% endfor %}\n\n<script>alert(1)</script> [klikk](javascript:alert(1))"
    rendered = message_notice(
        language, message=posted_message(subject="Møte <b>{{ 6*7 }}</b>", body=hostile, author_name="Ola <i>")
    )

    assert "{{ 7*7 }} {% for x in y %}x{% endfor %}" in rendered.text
    assert "{{ 7*7 }}" in rendered.sms
    assert "49" not in rendered.text + rendered.html + rendered.sms
    assert "42" not in rendered.text + rendered.html + rendered.sms + rendered.subject
    assert rendered.subject == "Møte <b>{{ 6*7 }}</b>"
    assert "<script>" not in rendered.html
    assert "<b>" not in rendered.html
    assert "&lt;b&gt;{{ 6*7 }}&lt;/b&gt;" in rendered.html
    assert "Ola &lt;i&gt;" in rendered.html
    assert "&amp;lt;" not in rendered.html
    assert_no_active_content(rendered.html)


# --- absence_notice -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_absence_notice_names_the_lessons_and_the_day(language: str) -> None:
    rendered = absence_notice(language)

    assert rendered.subject == ABSENCE_SUBJECT[language]
    assert ABSENCE_SENTENCE[language] in rendered.text
    assert CONTACT[language] in rendered.text
    assert ABSENCE_SENTENCE[language] in rendered.sms
    assert CONTACT[language] in rendered.sms
    assert "Bjølsen skole" in rendered.sms
    parser = _check(rendered.html)
    assert {"h1", "p"} <= parser.seen
    assert ABSENCE_SENTENCE[language] in visible(rendered.html)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_whole_day_absence(language: str) -> None:
    rendered = absence_notice(language, lessons=())

    assert WHOLE_DAY[language] in rendered.text
    assert WHOLE_DAY[language] in rendered.sms


def test_lessons_merged_from_several_events_are_in_order_and_once_each() -> None:
    merged = (LESSONS[2], LESSONS[0], LESSONS[1], LESSONS[0])

    assert ABSENCE_SENTENCE["nb"] in absence_notice("nb", lessons=merged).text


@pytest.mark.parametrize(
    ("lesson", "nb", "en"),
    [
        (Lesson(period=4), "4. time", "period 4"),
        (Lesson(subject="Engelsk", starts_at=time(12, 15)), "Engelsk kl. 12:15", "Engelsk at 12:15"),
        (Lesson(subject="Engelsk"), "Engelsk", "Engelsk"),
        (Lesson(starts_at=time(12, 15)), "timen kl. 12:15", "the lesson at 12:15"),
        (Lesson(), "én time", "one lesson"),
    ],
)
def test_a_lesson_is_named_by_what_is_known_of_it(lesson: Lesson, nb: str, en: str) -> None:
    assert f"fredag 4. desember: {nb}." in absence_notice("nb", lessons=(lesson,)).text
    assert f"Friday 4 December: {en}." in absence_notice("en", lessons=(lesson,)).text


def test_a_pupil_without_a_class_is_named_alone() -> None:
    rendered = absence_notice("nb", pupil=pupil(class_name=None), lessons=())

    assert "Emma var ikke på skolen i dag, fredag 4. desember." in rendered.text
    assert rendered.subject == "Fravær fredag 4. desember: Emma"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_absence_notice_never_shows_a_reason(language: str) -> None:
    # The service never passes a reason; even if one slipped into the context, no template reads it.
    rendered = absence_notice(language, reason=REASON, absence_reason=REASON)

    everything = rendered.subject + rendered.text + rendered.html + rendered.sms
    for word in ("Syk", "syk", "influensa", "feber", "sick", "reason", "årsak", "grunn"):
        assert word not in everything, word


@pytest.mark.parametrize("language", LANGUAGES)
def test_absence_sms_with_three_lessons_is_gsm7_in_at_most_two_segments(language: str) -> None:
    rendered = absence_notice(language)

    assert rendered.sms_encoding == "GSM-7", [char for char in rendered.sms if sms_encoding(char) != "GSM-7"]
    assert rendered.sms_segments <= 2
    assert rendered.sms_segments == sms_segments(rendered.sms)
    assert rendered.sms.startswith(("Hei Kari Nordmann,\n", "Dear Kari Nordmann,\n"))


def test_six_lessons_still_fit_by_leaving_out_the_greeting() -> None:
    lessons = tuple(Lesson(period=number, subject=name) for number, name in enumerate(SUBJECTS[:6], start=1))

    rendered = absence_notice("nb", pupil=pupil(first_name="Emma Sofie Marie"), lessons=lessons)

    assert rendered.sms_segments <= 2
    assert rendered.sms.startswith(
        "Emma Sofie Marie (7B) var ikke til stede i disse timene i dag, fredag 4. desember: 1. time"
    )
    assert "6. time (Engelsk)." in rendered.sms


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_long_list_of_lessons_becomes_a_count_in_the_sms_but_not_in_the_email(language: str) -> None:
    subjects = (*SUBJECTS, "Musikk", "Mat og helse", "Valgfag: Programmering")
    lessons = tuple(Lesson(period=number, subject=name) for number, name in enumerate(subjects, start=1))

    rendered = absence_notice(language, pupil=pupil(first_name="Emma Sofie Marie"), lessons=lessons)

    assert rendered.sms_segments <= 2
    assert {"nb": "i 10 timer i dag", "nn": "i 10 timar i dag", "en": "for 10 lessons today"}[language] in rendered.sms
    assert "Kunst og håndverk" in rendered.text
    assert "Kunst og håndverk" not in rendered.sms
    assert CONTACT[language] in rendered.sms


def test_absence_names_are_escaped_once_in_html() -> None:
    rendered = absence_notice(
        "nb", pupil=pupil(first_name="Emma <b>&</b>"), lessons=(Lesson(period=1, subject="<i>Norsk"),)
    )

    assert "Emma &lt;b&gt;&amp;&lt;/b&gt; (7B)" in visible(rendered.html)
    assert "1. time (&lt;i&gt;Norsk)" in visible(rendered.html)
    assert "&amp;lt;" not in rendered.html
    assert "Emma <b>&</b> (7B)" in rendered.text


# --- fitting a text into a number of SMS segments -----------------------------------------------------------


def test_fit_sms_keeps_a_short_text_whole() -> None:
    assert fit_sms("Emne", "Kort tekst.\n\n\nNy linje.", "Hilsen Ola", "Resten er på e-post.", 3) == (
        "Emne\nKort tekst.\nNy linje.\nHilsen Ola"
    )


def test_fit_sms_cuts_the_head_only_when_head_and_tail_alone_are_too_long() -> None:
    fitted = fit_sms("Emne " * 200, "Innhold", "Hilsen Ola", "", 2)

    assert measured_segments(fitted) <= 2
    assert fitted.endswith("…\nHilsen Ola")
    assert "Innhold" not in fitted


@settings(max_examples=150, deadline=None, database=None)
@given(
    head=st.text(max_size=400),
    body=st.text(max_size=2000),
    tail=st.text(max_size=200),
    segments=st.integers(min_value=1, max_value=4),
)
def test_fit_sms_always_fits(head: str, body: str, tail: str, segments: int) -> None:
    assert measured_segments(fit_sms(head, body, tail, "Resten er på e-post.", segments)) <= segments
