"""Right-to-left languages are laid out right to left, and Norwegian names, rooms and titles stay readable."""

from __future__ import annotations

import pytest

from notify_shared.rendering import RIGHT_TO_LEFT, available_languages, render_notification, sms_segments
from notify_shared.rendering.bidi import FSI, PDI, close_isolates, isolate_text, needs_isolation
from notify_shared.rendering.previews import sample_context

from .render_factories import guardian, meeting, render

PLACE = "Rom 204, Bjølsen skole"
RTL_LANGUAGES = sorted(language for language in available_languages() if language in RIGHT_TO_LEFT)


def _arabic(template: str = "meeting_invitation") -> str:
    assert "ar" in available_languages(), "the Arabic catalog is part of the product"
    return template


def test_the_arabic_invitation_is_right_to_left_with_the_norwegian_place_isolated() -> None:
    # Without the answer link, which takes the greeting's room in a UCS-2 SMS.
    context = sample_context("meeting_invitation", "ar")
    del context["answer_url"]
    rendered = render_notification(_arabic(), "ar", "nb", context)

    assert rendered.language == "ar"
    assert rendered.direction == "rtl"
    assert '<html lang="ar" dir="rtl">' in rendered.html
    assert '<td dir="rtl"' in rendered.html
    assert "text-align:right" in rendered.html
    assert "text-align:left" not in rendered.html
    assert f"</strong> <bdi>{PLACE}</bdi></p>" in rendered.html
    assert "<bdi>Foreldremøte 7B</bdi></h1>" in rendered.html
    assert "<bdi>Aisha Khan</bdi>" in rendered.html
    # The teacher's agenda is Norwegian: its block takes its own direction.
    assert '<div dir="auto" style="text-align:start;">\n<p style="margin:0 0 12px 0;">Leirskolen i mai' in rendered.html


def test_the_arabic_sms_text_and_subject_isolate_the_latin_values() -> None:
    # Without the answer link, which takes the greeting's room in a UCS-2 SMS.
    context = sample_context("meeting_invitation", "ar")
    del context["answer_url"]
    rendered = render_notification(_arabic(), "ar", "nb", context)

    assert f"{FSI}{PLACE}{PDI}" in rendered.sms
    assert f"{FSI}{PLACE}{PDI}" in rendered.text
    assert f"{FSI}Foreldremøte 7B{PDI}" in rendered.subject
    assert f"{FSI}Aisha Khan{PDI}" in rendered.sms
    # The marks are sent, so they are billed: the count includes them.
    assert rendered.sms_segments == sms_segments(rendered.sms)


@pytest.mark.parametrize("language", RTL_LANGUAGES)
@pytest.mark.parametrize("template", ["meeting_invitation", "meeting_reminder", "meeting_update"])
def test_every_right_to_left_language_isolates_the_place(language: str, template: str) -> None:
    context = sample_context(template, language)
    place = str(getattr(context["meeting"], "location", ""))

    rendered = render_notification(template, language, "nb", context)

    assert rendered.direction == "rtl"
    assert f"<bdi>{place}</bdi>" in rendered.html
    assert f"{FSI}{place}{PDI}" in rendered.sms
    assert rendered.sms.count(FSI) == rendered.sms.count(PDI)


@pytest.mark.parametrize("language", ["nb", "nn", "en"])
def test_a_norwegian_sms_with_norwegian_values_has_no_marks_and_stays_gsm7(language: str) -> None:
    rendered = render("meeting_invitation", language)

    assert FSI not in rendered.sms + rendered.text + rendered.subject
    assert rendered.sms_encoding == "GSM-7"
    assert f"<bdi>{meeting().location}</bdi>" in rendered.html  # HTML isolates always; it costs nothing there


def test_arabic_values_in_a_norwegian_notification_are_isolated() -> None:
    rendered = render(
        "meeting_invitation", "nb", guardian=guardian(name="عائشة خان"), meeting=meeting(location="قاعة 3")
    )

    assert f"Hei {FSI}عائشة خان{PDI}," in rendered.text
    assert f"Sted: {FSI}قاعة 3{PDI}" in rendered.sms
    assert rendered.sms_encoding == "UCS-2"


def test_the_html_title_holds_text_only_even_when_the_subject_is_a_sentence_with_values() -> None:
    context = sample_context("message_notice", "ar") | {"urgent": True}

    rendered = render_notification("message_notice", "ar", "nb", context)

    title = rendered.html.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "Tur til Sognsvann fredag" in title
    assert "<" not in title


@pytest.mark.parametrize(
    ("value", "direction", "expected"),
    [
        ("Rom 204", "rtl", True),
        ("204", "rtl", False),
        ("18:00–19:30", "rtl", False),
        ("مدرسة", "rtl", False),
        ("عائشة", "ltr", True),
        ("Kari Nordmann", "ltr", False),
        ("", "ltr", False),
    ],
)
def test_only_values_that_run_against_the_text_are_isolated(value: str, direction: str, expected: bool) -> None:
    assert direction in ("ltr", "rtl")
    assert needs_isolation(value, "rtl" if direction == "rtl" else "ltr") is expected
    isolated = isolate_text(value, "rtl" if direction == "rtl" else "ltr")
    assert isolated == (f"{FSI}{value}{PDI}" if expected else value)


def test_an_isolate_left_open_by_a_cut_is_closed() -> None:
    assert close_isolates(f"Om: {FSI}Vi snakker om…") == f"Om: {FSI}Vi snakker om…{PDI}"
    assert close_isolates(f"{FSI}a{PDI} b") == f"{FSI}a{PDI} b"
