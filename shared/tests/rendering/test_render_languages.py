"""Which language a guardian gets when theirs has no catalog, and which way it is written.

The languages without a catalog here (fr, sv, he) are ones nobody plans to translate, so these tests do not
change meaning as the planned catalogs (pl, ar, se, …) land.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from notify_shared.rendering import RIGHT_TO_LEFT, available_languages, choose_language, direction_of

from .render_factories import guardian, render, school


def test_languages_are_discovered_from_the_catalogs() -> None:
    assert {"nb", "nn", "en"} <= available_languages()


@pytest.mark.parametrize(
    ("wanted", "school_standard", "expected"),
    [
        ("nb", "nn", "nb"),
        ("nn", "nb", "nn"),
        ("en", "nn", "en"),
        ("nb-NO", "nn", "nb"),
        ("nn-NO", "nb", "nn"),
        ("en-GB", "nb", "en"),
        ("no", "nn", "nb"),
        ("fr", "nn", "nn"),
        ("fr", "nb", "nb"),
        ("fr-CA", "nn", "nn"),
        ("he", "nn", "nn"),
        ("sv", "nb", "nb"),
        ("fr", None, "nb"),
        ("fr", "", "nb"),
    ],
)
def test_fallback_chain(wanted: str, school_standard: str | None, expected: str) -> None:
    assert choose_language(wanted, school_standard) == expected


def test_a_french_guardian_at_a_nynorsk_school_gets_nynorsk_and_the_report_says_so() -> None:
    french = guardian(language="fr")
    nynorsk_school = school(written_standard="nn")

    rendered = render(
        "meeting_invitation",
        french.language,
        nynorsk_school.written_standard,
        guardian=french,
        school=nynorsk_school,
    )

    assert rendered.language == "nn"
    assert "Hjarteleg velkomen!" in rendered.text
    assert '<html lang="nn" dir="ltr">' in rendered.html


def test_a_regional_tag_gets_the_base_language() -> None:
    rendered = render("meeting_invitation", "nb-NO", "nn")

    assert rendered.language == "nb"
    assert "Hjertelig velkommen!" in rendered.text


@pytest.mark.parametrize("language", sorted(RIGHT_TO_LEFT))
def test_right_to_left_languages(language: str) -> None:
    assert direction_of(language) == "rtl"
    assert direction_of(f"{language}-AF") == "rtl"


@pytest.mark.parametrize("language", ["nb", "nn", "en", "pl", "uk", "so", "ti", "kmr", "tr", "vi"])
def test_left_to_right_languages(language: str) -> None:
    assert direction_of(language) == "ltr"


def test_direction_follows_the_language_actually_rendered() -> None:
    # Hebrew has no catalog: the guardian gets bokmål, laid out left to right.
    rendered = render("meeting_invitation", "he", "nb")

    assert (rendered.language, rendered.direction) == ("nb", "ltr")


async def test_concurrent_renders_in_different_languages_do_not_bleed_into_each_other() -> None:
    languages = ["nb", "nn", "en"] * 30
    expected = {language: render("meeting_invitation", language).text for language in ("nb", "nn", "en")}

    def render_text(language: str) -> tuple[str, str]:
        return language, render("meeting_invitation", language).text

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = await asyncio.gather(*(loop.run_in_executor(pool, render_text, lang) for lang in languages))

    for language, text in results:
        assert text == expected[language]
