"""Dates, times and free text as parents read them, in the school's time zone and the guardian's language."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from markupsafe import Markup

from notify_shared.rendering import format_date, format_datetime, format_time, format_time_range, paragraphs
from notify_shared.rendering.environment import period_text
from notify_shared.rendering.formatting import babel_locale, format_day
from notify_shared.rendering.languages import available_languages

from .render_factories import OSLO, meeting, render

START = datetime(2026, 12, 3, 18, 0, tzinfo=OSLO)
END = datetime(2026, 12, 3, 19, 30, tzinfo=OSLO)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("nb", "torsdag 3. desember 2026 kl. 18:00–19:30"),
        ("nn", "torsdag 3. desember 2026 kl. 18:00–19:30"),
        ("en", "Thursday 3 December 2026, 18:00–19:30"),
        ("nb-NO", "torsdag 3. desember 2026 kl. 18:00–19:30"),
    ],
)
def test_time_range_in_norwegian_and_english(language: str, expected: str) -> None:
    assert format_time_range(START, END, "Europe/Oslo", language) == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("nb", "torsdag 3. desember 2026 kl. 18:00"),
        ("nn", "torsdag 3. desember 2026 kl. 18:00"),
        ("en", "Thursday 3 December 2026 at 18:00"),
    ],
)
def test_date_and_time(language: str, expected: str) -> None:
    assert format_datetime(START, "Europe/Oslo", language) == expected


def test_date_and_time_alone() -> None:
    assert format_date(START, "Europe/Oslo", "nn") == "torsdag 3. desember 2026"
    assert format_time(START, "Europe/Oslo", "en") == "18:00"


def test_other_languages_fall_back_to_cldr_patterns() -> None:
    polish = format_time_range(START, END, "Europe/Oslo", "pl")

    assert "3 grudnia 2026" in polish
    assert "18:00" in polish
    assert "19:30" in polish


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        # Hand-picked: how a notice in the language gives a meeting time.
        ("de", "Donnerstag, 3. Dezember 2026, 18:00–19:30 Uhr"),
        ("pl", "czwartek, 3 grudnia 2026, godz. 18:00–19:30"),
        ("uk", "четвер, 3 грудня 2026\u202fр., 18:00–19:30"),
        ("tr", "3 Aralık 2026 Perşembe, saat 18:00–19:30"),
        # CLDR with a correction: day before month, no Latin commas in Pashto.
        ("so", "Khamiis, 3 Diseembar 2026, 18:00–19:30"),
        ("ps", "پنج شنبه 3 دسمبر 2026، 18:00–19:30"),
        # CLDR's own join, on the 24-hour clock where CLDR's default is 12-hour ("6:00 م", "6:00 PM").
        ("ar", "الخميس، 3 ديسمبر 2026، 18:00–19:30"),
        ("ur", "جمعرات، 3 دسمبر، 2026، 18:00–19:30"),
        ("ti", "ሓሙስ፣ 3 ታሕሳስ 2026፣ 18:00–19:30"),
        # Dari is CLDR's Persian of Afghanistan (Afghan month names); Kurmanji is CLDR's ku.
        ("prs", "پنجشنبه 3 دسمبر 2026، ساعت 18:00–19:30"),
        ("kmr", "pêncşem, 3ê berfanbara 2026an, 18:00–19:30"),
        ("lt", "2026 m. gruodžio 3 d., ketvirtadienis, 18:00–19:30"),
    ],
)
def test_time_range_in_the_languages_parents_read(language: str, expected: str) -> None:
    assert format_time_range(START, END, "Europe/Oslo", language) == expected


@pytest.mark.parametrize("language", sorted(available_languages()))
def test_the_date_and_the_time_are_never_run_together(language: str) -> None:
    # Where CLDR joins them with a bare space, the year ran into the time: "3 Diseembar 2026 18:00–19:30".
    date_text = format_date(START, "Europe/Oslo", language)
    times = "18:00–19:30"

    when = format_time_range(START, END, "Europe/Oslo", language)

    assert f"{date_text} {times}" not in when
    assert f"{times} {date_text}" not in when
    assert date_text in when
    assert times in when


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("nb", "mandag 7. desember"),
        ("pl", "poniedziałek, 7 grudnia"),
        ("de", "Montag, 7. Dezember"),
        ("tr", "7 Aralık Pazartesi"),
        ("so", "Isniin, 7 Diseembar"),
        ("kmr", "duşem, 7ê berfanbarê"),
        ("ar", "الاثنين، 7 ديسمبر"),
    ],
)
def test_a_school_day_names_the_whole_weekday_and_no_year(language: str, expected: str) -> None:
    assert format_day(date(2026, 12, 7), language) == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [("nb", "30. november–4. desember"), ("so", "30 Noofeembar – 4 Diseembar"), ("kmr", "30ê mijdarê – 4ê berfanbarê")],
)
def test_a_digest_week_puts_the_day_before_the_month(language: str, expected: str) -> None:
    assert period_text(date(2026, 11, 30), date(2026, 12, 4), language) == expected


def test_dari_and_kurmanji_have_babel_locales_of_their_own() -> None:
    assert str(babel_locale("prs")) == "fa_AF"
    assert babel_locale("kmr").language == "ku"
    for language in ("se", "ti", "so", "ps", "ur"):
        assert babel_locale(language).language == language


def test_values_are_converted_to_the_school_zone_whatever_offset_they_came_with() -> None:
    in_utc = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)
    in_new_york = in_utc.astimezone(timezone(timedelta(hours=-5)))

    assert format_datetime(in_utc, "Europe/Oslo", "nb") == "torsdag 3. desember 2026 kl. 18:00"
    assert format_datetime(in_new_york, "Europe/Oslo", "nb") == "torsdag 3. desember 2026 kl. 18:00"


def test_first_meeting_after_spring_forward_is_at_summer_time() -> None:
    # Europe/Oslo goes from +01:00 to +02:00 at 02:00 on 29 March 2026: 10:00 local is 08:00 UTC.
    start = datetime(2026, 3, 29, 8, 0, tzinfo=UTC)
    end = start + timedelta(hours=1)

    assert format_time_range(start, end, "Europe/Oslo", "nb") == "søndag 29. mars 2026 kl. 10:00–11:00"
    assert format_time_range(start, end, "Europe/Oslo", "en") == "Sunday 29 March 2026, 10:00–11:00"


def test_first_meeting_after_fall_back_is_at_standard_time() -> None:
    # Back to +01:00 at 03:00 on 25 October 2026: 10:00 local is 09:00 UTC.
    start = datetime(2026, 10, 25, 9, 0, tzinfo=UTC)

    assert format_datetime(start, "Europe/Oslo", "nn") == "søndag 25. oktober 2026 kl. 10:00"


def test_a_meeting_sent_with_the_winter_offset_for_a_summer_date_shows_the_right_wall_clock() -> None:
    # A producer that wrote +01:00 for a date after the switch still means that instant: 11:00 summer time.
    start = datetime(2026, 3, 29, 10, 0, tzinfo=timezone(timedelta(hours=1)))

    assert format_time(start, "Europe/Oslo", "nb") == "11:00"


def test_dst_dates_render_in_a_whole_invitation() -> None:
    spring = meeting(
        starts_at=datetime(2026, 3, 29, 10, 0, tzinfo=OSLO), ends_at=datetime(2026, 3, 29, 11, 0, tzinfo=OSLO)
    )
    autumn = meeting(
        starts_at=datetime(2026, 10, 25, 10, 0, tzinfo=OSLO),
        ends_at=datetime(2026, 10, 25, 11, 0, tzinfo=OSLO),
    )

    assert "søndag 29. mars 2026 kl. 10:00–11:00" in render("meeting_invitation", "nb", meeting=spring).text
    assert "søndag 25. oktober 2026 kl. 10:00–11:00" in render("meeting_invitation", "nb", meeting=autumn).text


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        format_date(datetime(2026, 12, 3, 18, 0), "Europe/Oslo", "nb")


def test_paragraphs_escape_first_then_add_paragraphs_and_line_breaks() -> None:
    html = paragraphs("Første <b>linje</b>\nAndre & siste\n\n\nNytt avsnitt\r\n")

    assert isinstance(html, Markup)
    assert html == Markup(
        '<p style="margin:0 0 12px 0;">Første &lt;b&gt;linje&lt;/b&gt;<br>\nAndre &amp; siste</p>\n'
        '<p style="margin:0 0 12px 0;">Nytt avsnitt</p>'
    )


def test_paragraphs_of_nothing_is_nothing() -> None:
    assert paragraphs(None) == Markup("")
    assert paragraphs("  \n\n ") == Markup("")
