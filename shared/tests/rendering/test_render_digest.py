"""The daily and weekly digest ("fredagsmail"): counts in the subject, every message in full, every absence."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields
from datetime import UTC, date, datetime
from typing import Any, Literal

import pytest

from notify_shared.contract.absences import Lesson
from notify_shared.contract.parties import Channel
from notify_shared.rendering import (
    DigestAbsence,
    DigestMessage,
    DigestSection,
    RenderedNotification,
    render_notification,
)

from .render_factories import LANGUAGES, OSLO, guardian, school, visible
from .test_render_html import _check
from .test_render_markdown import assert_no_active_content

TRIP_BODY = (
    "Fredag går vi til **Sognsvann**. Ta med:\n"
    "- matpakke og drikke\n"
    "- gode sko\n\n"
    "Påmelding: https://bjolsen.osloskolen.no/tur"
)


def digest_message(**overrides: Any) -> DigestMessage:
    values: dict[str, Any] = {
        "subject": "Tur til Sognsvann fredag",
        "body": TRIP_BODY,
        "author_name": "Ola Lærer",
        "posted_at": datetime(2026, 11, 30, 14, 5, tzinfo=OSLO),
        "urgent": False,
        "class_name": "7B",
    }
    return DigestMessage(**(values | overrides))


def digest_absence(**overrides: Any) -> DigestAbsence:
    values: dict[str, Any] = {
        "pupil_first_name": "Emma",
        "class_name": "7B",
        "date": date(2026, 11, 30),
        "lessons": (Lesson(period=1, subject="Matematikk"),),
        "reported_by_guardian": False,
    }
    return DigestAbsence(**(values | overrides))


GYM = digest_message(
    subject="Husk gymtøy",
    body="Husk gymtøy og innesko *torsdag*.",
    author_name="Kari Kontaktlærer",
    posted_at=datetime(2026, 12, 2, 9, 30, tzinfo=OSLO),
)
CHRISTMAS = digest_message(
    subject="Juleavslutning",
    body="Velkommen til juleavslutning i gymsalen 17. desember kl. 18.",
    author_name="Per Hansen",
    class_name=None,
    posted_at=datetime(2026, 12, 3, 12, 0, tzinfo=OSLO),
)
LEO_NEWS = digest_message(subject="Svømming i 3A", body="Vi starter med svømming neste uke.", class_name="3A")

SECTIONS = (
    DigestSection(heading="Emma (7B)", messages=(digest_message(), GYM), absences=(digest_absence(),)),
    DigestSection(heading="Leo (3A)", messages=(LEO_NEWS,), absences=()),
    DigestSection(heading="Hele skolen", messages=(CHRISTMAS,), absences=()),
)


def digest(
    language: str = "nb", period: Literal["daily", "weekly"] = "weekly", /, **overrides: Any
) -> RenderedNotification:
    context: dict[str, object] = {
        "school": school(),
        "guardian": guardian(language=language),
        "period": period,
        "period_start": date(2026, 11, 30) if period == "weekly" else date(2026, 12, 4),
        "period_end": date(2026, 12, 4),
        "sections": SECTIONS,
        "message_count": 4,
        "absence_count": 1,
    }
    return render_notification("digest", language, "nb", context | overrides)


def counted(messages: int, absences: int, sections: tuple[DigestSection, ...] = SECTIONS) -> dict[str, object]:
    return {"message_count": messages, "absence_count": absences, "sections": sections}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("period", ["daily", "weekly"])
def test_digest_renders_in_every_language_with_balanced_html(language: str, period: Literal["daily", "weekly"]) -> None:
    rendered = digest(language, period)

    assert rendered.language == language
    parser = _check(rendered.html)
    assert {"html", "h1", "h2", "h3", "p", "ul", "li", "a", "strong"} <= parser.seen
    assert "style" not in parser.seen
    assert "script" not in parser.seen
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in rendered.html
    assert "max-width:600px" in rendered.html
    for text in ("Tur til Sognsvann fredag", "Husk gymtøy", "Svømming i 3A", "Juleavslutning", "Bjølsen skole"):
        assert text in rendered.text
        assert text in rendered.html


WEEKLY_SUBJECTS = {
    "nb": {
        (3, 1): "Fredagsmail fra Bjølsen skole: 3 meldinger og 1 fravær",
        (1, 2): "Fredagsmail fra Bjølsen skole: 1 melding og 2 fravær",
        (2, 0): "Fredagsmail fra Bjølsen skole: 2 meldinger",
        (0, 1): "Fredagsmail fra Bjølsen skole: 1 fravær",
        (0, 0): "Fredagsmail fra Bjølsen skole",
    },
    "nn": {
        (3, 1): "Fredagsmail frå Bjølsen skole: 3 meldingar og 1 fråvær",
        (1, 2): "Fredagsmail frå Bjølsen skole: 1 melding og 2 fråvær",
        (2, 0): "Fredagsmail frå Bjølsen skole: 2 meldingar",
        (0, 1): "Fredagsmail frå Bjølsen skole: 1 fråvær",
        (0, 0): "Fredagsmail frå Bjølsen skole",
    },
    "en": {
        (3, 1): "Weekly update from Bjølsen skole: 3 messages and 1 absence",
        (1, 2): "Weekly update from Bjølsen skole: 1 message and 2 absences",
        (2, 0): "Weekly update from Bjølsen skole: 2 messages",
        (0, 1): "Weekly update from Bjølsen skole: 1 absence",
        (0, 0): "Weekly update from Bjølsen skole",
    },
}
DAILY_SUBJECTS = {
    "nb": {
        (2, 0): "Dagens meldinger fra Bjølsen skole: 2 meldinger",
        (1, 0): "Dagens meldinger fra Bjølsen skole: 1 melding",
        (1, 1): "Dagens meldinger fra Bjølsen skole: 1 melding og 1 fravær",
        (0, 1): "Dagens oversikt fra Bjølsen skole: 1 fravær",
    },
    "nn": {
        (2, 0): "Dagens meldingar frå Bjølsen skole: 2 meldingar",
        (1, 0): "Dagens meldingar frå Bjølsen skole: 1 melding",
        (1, 1): "Dagens meldingar frå Bjølsen skole: 1 melding og 1 fråvær",
        (0, 1): "Dagens oversikt frå Bjølsen skole: 1 fråvær",
    },
    "en": {
        (2, 0): "Today's messages from Bjølsen skole: 2 messages",
        (1, 0): "Today's messages from Bjølsen skole: 1 message",
        (1, 1): "Today's messages from Bjølsen skole: 1 message and 1 absence",
        (0, 1): "Today's update from Bjølsen skole: 1 absence",
    },
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_weekly_subject_counts_with_plurals(language: str) -> None:
    for (messages, absences), subject in WEEKLY_SUBJECTS[language].items():
        assert digest(language, "weekly", **counted(messages, absences)).subject == subject


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_daily_subject_counts_with_plurals(language: str) -> None:
    for (messages, absences), subject in DAILY_SUBJECTS[language].items():
        assert digest(language, "daily", **counted(messages, absences)).subject == subject


@pytest.mark.parametrize("language", LANGUAGES)
def test_without_absences_there_is_no_absence_part(language: str) -> None:
    no_absences = tuple(DigestSection(s.heading, s.messages, ()) for s in SECTIONS)

    rendered = digest(language, "weekly", **counted(4, 0, no_absences))

    heading = {"nb": "Fravær", "nn": "Fråvær", "en": "Absence"}[language]
    assert heading.lower() not in rendered.subject.lower()
    assert heading not in rendered.text
    assert heading not in rendered.html
    assert "Matematikk" not in rendered.text


def test_the_nb_weekly_digest_reads_as_a_letter() -> None:
    rendered = digest("nb", "weekly")

    assert rendered.text.startswith(
        "Hei Kari Nordmann,\n\nHer er ukens nytt fra Bjølsen skole (30. november–4. desember).\n\n"
        "Emma (7B)\n=========\n\nTur til Sognsvann fredag\n------------------------\n"
        "Fra Ola Lærer til 7B, mandag 30. november kl. 14:05\n\n"
        "Fredag går vi til Sognsvann. Ta med:\n\n- matpakke og drikke\n- gode sko\n\n"
        "Påmelding: https://bjolsen.osloskolen.no/tur\n"
    )
    assert (
        "Fravær\n- Emma var ikke til stede i disse timene mandag 30. november: 1. time (Matematikk).\n" in rendered.text
    )
    assert "Fra Per Hansen, torsdag 3. desember kl. 12:00" in rendered.text
    assert "God helg!" in rendered.text
    assert "Meldinger som ikke kan vente, sender vi alltid til deg med en gang." in rendered.text


@pytest.mark.parametrize(
    ("language", "daily_intro"),
    [
        ("nb", "Her er dagens nytt fra Bjølsen skole (fredag 4. desember)."),
        ("nn", "Her er dagens nytt frå Bjølsen skole (fredag 4. desember)."),
        ("en", "Here is today's news from Bjølsen skole (Friday 4 December)."),
    ],
)
def test_a_daily_digest_names_its_day_and_wishes_no_weekend(language: str, daily_intro: str) -> None:
    rendered = digest(language, "daily")

    assert daily_intro in rendered.text
    assert "helg" not in rendered.text
    assert "weekend" not in rendered.text


def test_weekly_intro_in_nynorsk_and_english() -> None:
    assert "Her er nytt frå Bjølsen skole denne veka (30. november–4. desember)." in digest("nn").text
    assert "Here is this week's news from Bjølsen skole (30 November\u2009–\u20094 December)." in digest("en").text


@pytest.mark.parametrize("language", LANGUAGES)
def test_sections_appear_in_the_given_order_with_their_own_messages(language: str) -> None:
    for body in (digest(language).text, digest(language).html):
        emma, leo, school_wide = (body.index(heading) for heading in ("Emma (7B)", "Leo (3A)", "Hele skolen"))
        assert emma < body.index("Tur til Sognsvann fredag") < body.index("Husk gymtøy") < leo
        assert leo < body.index("Svømming i 3A") < school_wide < body.index("Juleavslutning")

    reversed_sections = tuple(reversed(SECTIONS))
    text = digest(language, sections=reversed_sections).text
    assert text.index("Hele skolen") < text.index("Leo (3A)") < text.index("Emma (7B)")


def test_messages_are_shown_in_full_with_their_markdown() -> None:
    rendered = digest("nb")

    assert "<strong>Sognsvann</strong>" in rendered.html
    assert '<a href="https://bjolsen.osloskolen.no/tur"' in rendered.html
    assert "<em>torsdag</em>" in rendered.html
    assert "Husk gymtøy og innesko torsdag." in rendered.text
    assert "- matpakke og drikke\n- gode sko" in rendered.text


def test_an_urgent_message_is_marked_in_the_digest() -> None:
    urgent = DigestSection("Emma (7B)", (digest_message(urgent=True),), ())

    rendered = digest("nn", **counted(1, 0, (urgent,)))

    assert "Viktig: Tur til Sognsvann fredag" in rendered.text
    assert "Viktig: Tur til Sognsvann fredag" in visible(rendered.html)


@pytest.mark.parametrize(
    ("language", "lines"),
    [
        (
            "nb",
            (
                "Emma var ikke til stede i disse timene mandag 30. november: 1. time (Matematikk), 2. time (Norsk).",
                "Emma var ikke på skolen onsdag 2. desember (meldt av foresatt).",
                "Emma var ikke til stede i disse timene torsdag 3. desember: 5. time (Musikk) (meldt av foresatt).",
                "Emma var ikke på skolen fredag 4. desember.",
            ),
        ),
        (
            "nn",
            (
                "Emma var ikkje til stades i desse timane måndag 30. november: 1. time (Matematikk), 2. time (Norsk).",
                "Emma var ikkje på skulen onsdag 2. desember (meldt av føresett).",
                "Emma var ikkje til stades i desse timane torsdag 3. desember: 5. time (Musikk) (meldt av føresett).",
                "Emma var ikkje på skulen fredag 4. desember.",
            ),
        ),
        (
            "en",
            (
                "Emma was absent on Monday 30 November: period 1 (Matematikk), period 2 (Norsk).",
                "Emma was absent all day on Wednesday 2 December (reported by a parent).",
                "Emma was absent on Thursday 3 December: period 5 (Musikk) (reported by a parent).",
                "Emma was absent all day on Friday 4 December.",
            ),
        ),
    ],
)
def test_absences_are_listed_by_day_and_lesson(language: str, lines: tuple[str, ...]) -> None:
    absences = (
        digest_absence(lessons=(Lesson(period=2, subject="Norsk"), Lesson(period=1, subject="Matematikk"))),
        digest_absence(date=date(2026, 12, 2), lessons=(), reported_by_guardian=True),
        digest_absence(
            date=date(2026, 12, 3), lessons=(Lesson(period=5, subject="Musikk"),), reported_by_guardian=True
        ),
        digest_absence(date=date(2026, 12, 4), lessons=()),
    )
    section = DigestSection("Emma (7B)", (), absences)

    rendered = digest(language, **counted(0, 4, (section,)))

    for line in lines:
        assert f"- {line}\n" in rendered.text
        assert f'<li style="margin:0 0 4px 0;">{line}</li>' in visible(rendered.html)


def test_empty_sections_are_left_out() -> None:
    empty = DigestSection("Tomt (1A)", (), ())

    rendered = digest("nb", sections=(empty, *SECTIONS))

    assert "Tomt (1A)" not in rendered.text
    assert "Tomt (1A)" not in rendered.html


def test_a_digest_with_nothing_in_it_still_reads_well() -> None:
    rendered = digest("nb", **counted(0, 0, ()))

    assert rendered.subject == "Fredagsmail fra Bjølsen skole"
    assert "Det er ikke noe nytt fra skolen denne gangen." in rendered.text
    _check(rendered.html)


def test_the_absence_contract_has_no_reason() -> None:
    assert "reason" not in {field.name for field in fields(DigestAbsence)}
    rendered = digest("nb", reason="Syk", absence_reason="Syk")
    assert "Syk" not in rendered.text + rendered.html + rendered.sms + rendered.subject


def test_the_context_classes_are_frozen_and_want_aware_times() -> None:
    message = digest_message()
    with pytest.raises(FrozenInstanceError):
        message.subject = "Endret"  # type: ignore[misc]
    with pytest.raises(ValueError, match="aware"):
        digest_message(posted_at=datetime(2026, 11, 30, 14, 5))  # naive on purpose


def test_message_times_are_shown_in_the_schools_time_zone() -> None:
    utc = DigestSection("Emma (7B)", (digest_message(posted_at=datetime(2026, 11, 30, 23, 30, tzinfo=UTC)),), ())

    assert "tirsdag 1. desember kl. 00:30" in digest("nb", **counted(1, 0, (utc,))).text


@pytest.mark.parametrize("language", LANGUAGES)
def test_user_text_in_a_digest_is_shown_literally(language: str) -> None:
    hostile = DigestSection(
        heading="Emma <script>alert(1)</script>",
        messages=(
            digest_message(
                subject="Møte {{ 7*7 }} <b>",
                body="{% for x in y %}punkt{% endfor %} <img src=x onerror=alert(1)> [x](javascript:alert(1))",
                author_name="Ola <i>Lærer</i>",
            ),
        ),
        absences=(digest_absence(pupil_first_name="Emma <u>"),),
    )

    rendered = digest(language, **counted(1, 1, (hostile,)))

    assert "Møte {{ 7*7 }} <b>" in rendered.text
    assert "{% for x in y %}punkt{% endfor %}" in rendered.text
    assert "49" not in rendered.text + rendered.html
    assert "<script" not in rendered.html
    assert "<img" not in rendered.html
    assert "<b>" not in rendered.html
    assert "<u>" not in rendered.html
    assert "Ola &lt;i&gt;Lærer&lt;/i&gt;" in rendered.html
    assert "&amp;lt;" not in rendered.html
    assert_no_active_content(rendered.html)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_digest_sms_is_a_real_summary(language: str) -> None:
    rendered = digest(language)

    assert rendered.sms.startswith(WEEKLY_SUBJECTS[language][(3, 1)].replace("3", "4", 1) + "\n")
    assert "- Tur til Sognsvann fredag\n" in rendered.sms
    assert "Bjølsen skole" in rendered.sms
    assert rendered.sms_segments <= 3
    assert "logg inn" not in rendered.sms.lower()
    assert "log in" not in rendered.sms.lower()


def test_a_long_digest_sms_is_cut_and_points_to_the_email() -> None:
    many = DigestSection(
        "Emma (7B)", tuple(digest_message(subject=f"Melding nummer {n} om turen") for n in range(40)), ()
    )

    rendered = digest("nb", **counted(40, 0, (many,)))

    assert rendered.sms_segments <= 3
    assert "...\nAlt står i e-posten du har fått fra oss.\nHilsen Bjølsen skole" in rendered.sms
    without_email = guardian(email=None, channels=(Channel.SMS,))
    assert "e-posten" not in digest("nb", guardian=without_email, **counted(40, 0, (many,))).sms
