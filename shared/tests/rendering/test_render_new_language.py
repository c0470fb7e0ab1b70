"""Adding a language is dropping in a `.po` file; a right-to-left one is laid out right to left."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from notify_shared.rendering import environment, formatting, languages, renderer

from .render_factories import render

SHIPPED_LOCALE = Path(languages.__file__).parent.parent / "locale"


def _clear_caches() -> None:
    for cached in (
        languages.available_languages,
        environment.translations_for,
        environment.environment_for,
        renderer._compiled,
        formatting.patterns_for,
        formatting.babel_locale,
    ):
        cached.cache_clear()


@pytest.fixture
def locale_with_hebrew(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The shipped catalogs plus a `he` catalog (English text stands in for a real translation).

    Hebrew because no Hebrew catalog is planned: the test must not depend on which catalogs have landed.
    """
    locale = tmp_path / "locale"
    shutil.copytree(SHIPPED_LOCALE, locale)
    (locale / "he" / "LC_MESSAGES").mkdir(parents=True)
    english = (locale / "en" / "LC_MESSAGES" / "messages.po").read_text(encoding="utf-8")
    (locale / "he" / "LC_MESSAGES" / "messages.po").write_text(
        english.replace('"Language: en\\n"', '"Language: he\\n"'), encoding="utf-8"
    )
    monkeypatch.setattr(languages, "locale_directory", lambda: locale)
    monkeypatch.setattr(environment, "locale_directory", lambda: locale)
    _clear_caches()
    yield locale
    monkeypatch.undo()
    _clear_caches()


@pytest.mark.usefixtures("locale_with_hebrew")
def test_a_dropped_in_catalog_is_used_and_laid_out_right_to_left() -> None:
    rendered = render("meeting_invitation", "he", "nb")

    assert rendered.language == "he"
    assert rendered.direction == "rtl"
    assert '<html lang="he" dir="rtl">' in rendered.html
    assert 'dir="rtl"' in rendered.html
    assert "text-align:right" in rendered.html
    # The date comes from CLDR's Hebrew data, on the 24-hour clock.
    assert "2026" in rendered.text
    assert "18:00" in rendered.text
