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
from notify_shared.rendering.sms_fitting import compose_sms, measured_segments, shorten, sms_line

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


def test_the_cut_line_fills_the_room_left_and_ends_at_a_sentence() -> None:
    lines = [sms_line(LEAD), sms_line(TIME), sms_line(AGENDA, label="Om møtet:", cut=True, drop=1), sms_line(SIGN_OFF)]

    sms = compose_sms(lines, 2, 3)

    assert measured_segments(sms) == 2
    agenda = sms.split("\n")[2]
    # Two whole sentences, not a third one broken off after "Ta gjerne med": the ellipsis says more follows.
    assert agenda == (
        "Om møtet: Leirskolen i mai: kostnader og pakkeliste. Ta gjerne med spørsmål om overgangen til "
        "ungdomsskolen. Leirskolen i mai: kostnader og pakkeliste. …"
    )
    assert sms.endswith(SIGN_OFF)


@pytest.mark.parametrize(
    ("agenda", "room", "expected"),
    [
        # A sentence that keeps at least half of what a cut at a word would is preferred to a stray word.
        (
            "Leirskolen i mai: kostnader og pakkeliste. Ta gjerne med spørsmål.",
            50,
            "Leirskolen i mai: kostnader og pakkeliste. …",
        ),
        # Too short a sentence for the room: cut at a word instead, never inside one.
        (
            "Tur. Vi går til Sognsvann og griller pølser ved vannet om været tillater det.",
            50,
            "Tur. Vi går til Sognsvann og griller pølser ved…",
        ),
        # "kl. 18" and "f.eks. matpakke" are not the end of a sentence.
        (
            "Vi møtes kl. 18 ved porten og tar med f.eks. matpakke og drikke til alle.",
            40,
            "Vi møtes kl. 18 ved porten og tar med…",
        ),
        # Arabic question mark, Urdu full stop, Ethiopic full stop.
        ("هل يمكنكم الحضور؟ سنتحدث عن الرحلة المدرسية في شهر مايو", 40, "هل يمكنكم الحضور؟ …"),
        ("براہ کرم وقت پر آئیں۔ ہم سکول کے سفر کے بارے میں بات کریں گے", 40, "براہ کرم وقت پر آئیں۔ …"),
        ("እንኳዕ ብደሓን መጻእኩም። ብዛዕባ ናይ ትምህርቲ ቤት ጉዕዞ ክንዛረብ ኢና", 25, "እንኳዕ ብደሓን መጻእኩም። …"),
    ],
)
def test_a_shortened_agenda_ends_at_a_sentence_or_a_word_with_an_ellipsis(
    agenda: str, room: int, expected: str
) -> None:
    shortened = shorten(agenda, room)

    assert shortened == expected
    assert len(shortened) <= room


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


def test_a_line_that_needs_ucs2_still_gives_way_only_in_its_turn() -> None:
    # The Polish greeting needs UCS-2 and the Norwegian agenda does not; the agenda still goes first, and the
    # notice is measured as the Polish it is, so it gets the third segment that UCS-2 needs for its essentials.
    lines = [
        sms_line("Dzień dobry,", drop=2),
        sms_line(LEAD),
        sms_line(TIME),
        sms_line(PLACE),
        sms_line(AGENDA, label="O spotkaniu:", cut=True, drop=1),
        sms_line(SIGN_OFF),
    ]

    sms = compose_sms(lines, 2, 3)

    assert sms.startswith(f"Dzień dobry,\n{LEAD}\n{TIME}\n{PLACE}\n")
    assert sms.endswith(SIGN_OFF)
    assert measured_segments(sms) == 3


def test_a_less_important_line_never_stays_when_a_more_important_one_gave_way() -> None:
    # In two GSM-7 segments there is room for the short Norwegian sign-off line, but not for the longer
    # Polish request that gives way after it: both go, in the order stated.
    essentials = [sms_line(LEAD), sms_line(TIME), sms_line(PLACE), sms_line("x" * 100)]
    lines = [
        *essentials,
        sms_line("Om møtet: kort.", drop=1),
        sms_line("Jeśli nie uda się przyjść, prosimy dać znać szkole.", drop=2),
    ]

    sms = compose_sms(lines, 2)

    assert "Jeśli" not in sms
    assert "Om møtet" not in sms
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
