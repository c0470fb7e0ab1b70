"""Fitting a notice into its SMS budget: by segments in either encoding, optional lines giving way in order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notify_shared.contract.meetings import Meeting
from notify_shared.rendering import environment, formatting, languages, render_notification, renderer
from notify_shared.rendering.bidi import FSI, PDI
from notify_shared.rendering.previews import sample_context
from notify_shared.rendering.sms_fitting import compose_sms, measured_segments, sms_line

from .pseudo_locale import write_pseudo_locale

SHIPPED_LOCALE = Path(languages.__file__).parent.parent / "locale"
TEMPLATES = (
    "meeting_invitation",
    "meeting_update",
    "meeting_cancellation",
    "meeting_reminder",
    "absence_notice",
    "message_notice",
    "digest",
)

LEAD = "Invitasjon til foreldremøte: Foreldremøte 7B"
TIME = "Tid: torsdag 3. desember 2026 kl. 18:00-19:30"
PLACE = "Sted: Rom 204, Bjølsen skole"
SIGN_OFF = "Hilsen Bjølsen skole"
AGENDA = "Leirskolen i mai: kostnader og pakkeliste. Ta gjerne med spørsmål om overgangen til ungdomsskolen. " * 3


def test_what_fits_is_sent_whole() -> None:
    lines = [sms_line("Hei Kari,", drop=2), sms_line(LEAD), sms_line("Kort.", label="Om:", cut=True, drop=1)]

    assert compose_sms(lines, 2, 3) == f"Hei Kari,\n{LEAD}\nOm: Kort."


def test_the_cut_line_fills_the_room_left_and_ends_at_a_word() -> None:
    lines = [sms_line(LEAD), sms_line(TIME), sms_line(AGENDA, label="Om møtet:", cut=True, drop=1), sms_line(SIGN_OFF)]

    sms = compose_sms(lines, 2, 3)

    assert measured_segments(sms) == 2
    agenda = sms.split("\n")[2]
    assert agenda.startswith("Om møtet: Leirskolen i mai")
    assert agenda.endswith("…")
    assert AGENDA.startswith(agenda.removeprefix("Om møtet: ").removesuffix("…"))
    assert AGENDA[len(agenda) - len("Om møtet: ") - 1] == " "
    assert sms.endswith(SIGN_OFF)


def test_optional_lines_give_way_in_the_stated_order_and_a_line_can_become_a_shorter_one() -> None:
    # In UCS-2 two segments hold 134 units: the essentials fit, nothing optional does.
    lines = [
        sms_line("Добрий день, Олена Коваленко,", drop=1),
        sms_line(
            "Emma (7B) не була присутня сьогодні на уроках: 1 (Математика), 2 (Норвезька), 3 (Фізкультура).",
            drop=2,
            instead="Emma (7B) пропустила сьогодні 3 уроки.",
        ),
        sms_line("Якщо це несподівано, зверніться до школи."),
        sms_line("З повагою, Bjølsen skole"),
    ]

    sms = compose_sms(lines, 2, 3)

    assert (
        sms
        == "Emma (7B) пропустила сьогодні 3 уроки.\nЯкщо це несподівано, зверніться до школи.\nЗ повагою, Bjølsen skole"
    )
    assert measured_segments(sms) == 2


def test_a_third_segment_is_used_only_when_the_essentials_need_it() -> None:
    essentials = [
        sms_line("Нагадуємо про батьківські збори: " + "Foreldremøte 7B"),
        sms_line("Час: " + "x" * 60),
        sms_line("Місце: Rom 204, Bjølsen skole"),
    ]
    greeting = sms_line("Добрий день,", drop=1)

    sms = compose_sms([greeting, *essentials], 2, 3)

    assert measured_segments(sms) == 3
    assert sms.startswith("Добрий день,")  # in the third segment, the greeting has room again


def test_a_line_that_only_needed_ucs2_gives_way_and_gsm7_lines_use_the_room() -> None:
    # A Polish greeting would make the whole SMS UCS-2; without it the Norwegian agenda fits in GSM-7.
    lines = [
        sms_line("Dzień dobry,", drop=2),
        sms_line(LEAD),
        sms_line(TIME),
        sms_line(PLACE),
        sms_line(AGENDA, label="O spotkaniu:", cut=True, drop=1),
        sms_line(SIGN_OFF),
    ]

    sms = compose_sms(lines, 2, 3)

    assert "Dzień dobry" not in sms
    assert "O spotkaniu: Leirskolen i mai" in sms
    assert measured_segments(sms) == 2


def test_a_cut_inside_an_isolated_value_closes_the_isolate() -> None:
    lines = [sms_line("تذكير: اجتماع " * 6), sms_line(f"{FSI}{AGENDA}{PDI}", label="حول الاجتماع:", cut=True, drop=1)]

    sms = compose_sms(lines, 2, 3)

    assert measured_segments(sms) <= 3
    assert sms.count(FSI) == sms.count(PDI) == 1
    assert sms.endswith(f"…{PDI}")


def test_too_short_a_cut_is_left_out() -> None:
    lines = [sms_line("a" * 290), sms_line(AGENDA, label="Om:", cut=True, drop=1)]

    assert compose_sms(lines, 2) == "a" * 290


def test_essentials_that_are_absurdly_long_are_cut_keeping_the_sign_off() -> None:
    sms = compose_sms([sms_line("Rom " * 200), sms_line(SIGN_OFF)], 2, 3)

    assert measured_segments(sms) <= 3
    assert sms.endswith(f"…\n{SIGN_OFF}")


_line_text = st.text(alphabet=st.sampled_from("abcæøå ÆØÅ€[ ]ąęńśДжمرح👋\u2068\u2069"), max_size=250)


@settings(max_examples=150, deadline=None, database=None)
@given(
    texts=st.lists(_line_text, min_size=1, max_size=7),
    drops=st.lists(st.one_of(st.none(), st.integers(min_value=1, max_value=3)), min_size=7, max_size=7),
    cuts=st.lists(st.booleans(), min_size=7, max_size=7),
    segments=st.integers(min_value=1, max_value=3),
)
def test_compose_sms_always_fits_the_larger_budget(
    texts: list[str], drops: list[int | None], cuts: list[bool], segments: int
) -> None:
    lines = [
        sms_line(text, drop=drop, cut=cut, label="Om:" if cut else "")
        for text, drop, cut in zip(texts, drops, cuts, strict=False)
    ]

    assert measured_segments(compose_sms(lines, segments, segments + 1)) <= segments + 1


# --- the templates with translations that are long and need UCS-2, before the real ones exist ----------------


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
def pseudo_languages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`qps`: a third longer than English and UCS-2; `he`: in Hebrew's place, right to left, Arabic letters."""
    locale = write_pseudo_locale(SHIPPED_LOCALE, tmp_path / "locale", {"qps": False, "he": True})
    monkeypatch.setattr(languages, "locale_directory", lambda: locale)
    monkeypatch.setattr(environment, "locale_directory", lambda: locale)
    _clear_caches()
    yield
    monkeypatch.undo()
    _clear_caches()


@pytest.mark.usefixtures("pseudo_languages")
@pytest.mark.parametrize("language", ["qps", "he"])
@pytest.mark.parametrize("template", TEMPLATES)
def test_every_sms_fits_three_segments_with_long_ucs2_translations(template: str, language: str) -> None:
    context = sample_context(template, language)

    rendered = render_notification(template, language, "nb", context)

    assert rendered.language == language
    assert rendered.sms_encoding == "UCS-2"
    # With the answer link (invitations and updates) one segment more: the link is never cut.
    assert rendered.sms_segments <= (4 if "answer_url" in context else 3), rendered.sms
    visible = rendered.sms.replace(FSI, "").replace(PDI, "")
    assert "Bjølsen skole" in visible
    meeting = context.get("meeting")
    if isinstance(meeting, Meeting):
        assert meeting.title in visible
        assert "18:00" in visible
