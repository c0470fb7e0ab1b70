"""Every template, in every language that has a catalog, with realistic data: complete, valid, within budget.

Languages are discovered from the locale directory, so a catalog that lands is covered from the next run,
and one that is only half translated fails here, naming what is missing, instead of reaching a parent as a
mix of English and their language.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from notify_shared.contract.meetings import Meeting
from notify_shared.rendering import (
    RenderedNotification,
    available_languages,
    direction_of,
    format_time_range,
    render_notification,
    template_names,
)
from notify_shared.rendering.bidi import ISOLATE_MARKS
from notify_shared.rendering.formatting import babel_locale
from notify_shared.rendering.languages import locale_directory
from notify_shared.rendering.previews import sample_context

from .render_factories import OSLO
from .test_render_html import _check

LOCALE = Path(str(locale_directory()))
LANGUAGES = sorted(available_languages())
TEMPLATES = sorted(template_names())

SMS_MAX_SEGMENTS = 3
"""No SMS is ever longer than this, in any language."""
COMPOSED = frozenset(
    {"meeting_invitation", "meeting_update", "meeting_cancellation", "meeting_reminder", "absence_notice"}
)
"""Notices built line by line (compose_sms): two segments when the text is GSM-7, three only in UCS-2."""


def _read(path: Path, language: str | None = None) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=language)


def _ids(catalog: Catalog) -> set[str]:
    return {str(message.id) for message in catalog if message.id}


def _translated(message: Message) -> bool:
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    return all(strings)


@cache
def _render(template: str, language: str) -> RenderedNotification:
    return render_notification(template, language, "nb", sample_context(template, language))


def _catalog_path(language: str) -> Path:
    (directory,) = [entry for entry in LOCALE.iterdir() if entry.name.replace("_", "-").lower() == language.lower()]
    return directory / "LC_MESSAGES" / "messages.po"


# --- the catalogs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_catalog_translates_every_string_of_the_templates(language: str) -> None:
    template_ids = _ids(_read(LOCALE / "messages.pot"))
    catalog = _read(_catalog_path(language))
    entries = [message for message in catalog if message.id]

    missing = sorted(template_ids - _ids(catalog))
    untranslated = sorted(str(message.id) for message in entries if not _translated(message))
    fuzzy = sorted(str(message.id) for message in entries if message.fuzzy)
    assert not missing, f"{language}: not in the catalog (run pybabel update): {missing}"
    assert not untranslated, f"{language}: untranslated: {untranslated}"
    assert not fuzzy, f"{language}: fuzzy, so left out at run time: {fuzzy}"
    assert not catalog.fuzzy, f"{language}: the catalog header is marked fuzzy"


_WORDS = re.compile(r"[A-Za-z]{3,}")


@pytest.mark.parametrize("language", [language for language in LANGUAGES if language != "en"])
def test_no_sentence_is_left_in_english(language: str) -> None:
    # A msgstr copied from the msgid passes the checks above and still reaches the parent in English.
    copied = [
        str(message.id)
        for message in _read(_catalog_path(language))
        if isinstance(message.id, str) and len(_WORDS.findall(message.id)) >= 4 and message.string == message.id
    ]
    assert not copied, f"{language}: still English: {copied}"


# --- rendering ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_template_renders_in_the_language_of_its_catalog(language: str, template: str) -> None:
    rendered = _render(template, language)

    # No silent fallback: a guardian whose language has a catalog gets that language, whatever the school.
    assert rendered.language == language
    assert rendered.direction == direction_of(language)
    assert f'<html lang="{language}" dir="{rendered.direction}">' in rendered.html
    assert rendered.subject
    assert "\n" not in rendered.subject
    assert rendered.text.strip()
    assert "None" not in rendered.subject + rendered.text + rendered.sms
    if language not in ("nb", "en"):
        assert rendered.text != _render(template, "nb").text
        assert rendered.text != _render(template, "en").text


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_html_parses_and_is_laid_out_in_the_languages_direction(language: str, template: str) -> None:
    rendered = _render(template, language)

    parser = _check(rendered.html)
    assert {"html", "head", "title", "body", "table", "h1", "p"} <= parser.seen
    assert not {"script", "style"} & parser.seen
    title = rendered.html.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "<" not in title, "a <title> holds text only; tags there show as text"
    align = "right" if rendered.direction == "rtl" else "left"
    assert f'<td dir="{rendered.direction}"' in rendered.html
    assert f"text-align:{align}" in rendered.html


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_sms_is_within_its_budget_and_keeps_what_matters(language: str, template: str) -> None:
    rendered = _render(template, language)
    context = sample_context(template, language)

    limit = 2 if template in COMPOSED and rendered.sms_encoding == "GSM-7" else SMS_MAX_SEGMENTS
    if "answer_url" in context:
        # The answer link and how to reply are essentials: one segment more (docs/responses.md).
        limit += 1
        assert str(context["answer_url"]) in rendered.sms
    assert rendered.sms_segments <= limit, (rendered.sms_encoding, rendered.sms)
    plain = rendered.sms.translate({ord(mark): None for mark in ISOLATE_MARKS})
    assert "Bjølsen skole" in plain
    if template.startswith("meeting_"):
        meeting = context["meeting"]
        assert isinstance(meeting, Meeting)
        assert meeting.title in plain
        assert "18:00" in plain
        if template != "meeting_cancellation":  # the place of a cancelled meeting may give way
            assert meeting.location in plain
    if template == "absence_notice":
        assert "Emma (7B)" in plain


# --- dates and times ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_dates_are_formatted_by_babel_in_the_language_on_the_24_hour_clock(language: str) -> None:
    start = datetime(2026, 12, 3, 18, 0, tzinfo=OSLO)
    end = datetime(2026, 12, 3, 19, 30, tzinfo=OSLO)

    when = format_time_range(start, end, "Europe/Oslo", language)

    assert babel_locale(language).language != "en" or language == "en", "Babel fell back to English"
    assert "18:00" in when
    assert "19:30" in when
    assert "2026" in when
    if language != "en":
        assert "December" not in when
        assert "Thursday" not in when


# --- fallback for a language without a catalog --------------------------------------------------------------


@pytest.mark.parametrize(("school_standard", "expected"), [("nn", "nn"), ("nb", "nb"), ("", "nb")])
def test_a_language_without_a_catalog_falls_back_to_the_schools_standard_then_bokmal(
    school_standard: str, expected: str
) -> None:
    assert "fr" not in available_languages()
    context = sample_context("meeting_invitation", "fr")

    rendered = render_notification("meeting_invitation", "fr", school_standard, context)

    assert rendered.language == expected
    assert f'<html lang="{expected}" dir="ltr">' in rendered.html
    assert rendered.text == render_notification("meeting_invitation", expected, "nb", context).text
