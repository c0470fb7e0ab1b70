"""Dates, times and free text as a parent reads them: in the school's time zone and the guardian's language.

Events carry aware datetimes (with a UTC offset); a parent needs the local wall-clock time at the school, so
every value is converted to the school's IANA zone first. That also gets daylight saving right: the offset
comes from the zone's rules for that date, not from the offset the event happened to be sent with.

Every language is formatted by Babel in its own CLDR locale. Where CLDR's defaults read like a machine
("torsdag 3. desember 2026, 18:00:00 normaltid for Sentral-Europa") or are plainly off for families in Norway,
`EXPLICIT_PATTERNS` and `_CLDR_CORRECTIONS` hold hand-picked patterns; the other languages get CLDR's full
date, its 24-hour time and its own way of joining the two.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from functools import cache, lru_cache
from typing import Final
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from markupsafe import Markup, escape

from notify_shared.rendering.languages import canonical_tag

# Language tags whose CLDR data lives under another name in Babel. CLDR has no Dari (`prs`): Dari is the
# Persian of Afghanistan, which CLDR holds as `fa_AF` (its month names, "دسمبر", are the Afghan ones).
# Kurmanji (`kmr`) is CLDR's `ku`, Kurdish in Latin script.
_BABEL_ALIASES: Final[dict[str, str]] = {"no": "nb", "prs": "fa_AF", "kmr": "ku"}

_FALLBACK_LOCALE: Final = "en"

# Every language shows times on the 24-hour clock, also where CLDR's default is 12-hour (ar, ur, so, ti give
# "6:00 م", "6:00 PM", "6:00 GD", "6:00 ድ.ቀ."). Parents in Norway meet the 24-hour clock everywhere else: on
# the school's own plans and letters, in what the teacher writes in the agenda ("kl. 18"), on buses, at work
# and in the Norwegian original of every message. The same meeting at "18:00" in one text and "6:00 PM" in
# another invites mistakes, and the day-period words are the part a newcomer is least sure of. Each locale
# still writes the time its own way (CLDR's `Hm` skeleton: "18:00", or "H:mm" where that is the custom).
_TIME_SKELETON: Final = "Hm"
_TIME_PATTERN: Final = "HH:mm"


@dataclass(frozen=True)
class DateTimePatterns:
    """How one language writes a meeting time.

    `date`, `time` and `day` are CLDR patterns; the others are `str.format` templates.

    `day` is a school day without the year, as notices and digests name it ("fredag 4. desember"): they are
    about today or this week, so the year would only lengthen an SMS. `at` joins a date and a time (`{date}`,
    `{time}`); `same_day` joins a date with a start and an end time (`{date}`, `{start}`, `{end}`);
    `across_days` joins two `at` values (`{start}`, `{end}`). `period_end`, when set, is how each end of a
    digest's week is written ("30 Noofeembar – 4 Diseembar") instead of CLDR's interval format.
    """

    date: str
    time: str
    day: str
    at: str
    same_day: str
    across_days: str = "{start} – {end}"
    period_end: str | None = None


# Ranges use an en dash (U+2013), as Norwegian and English typography want; SMS makes it a hyphen.
EXPLICIT_PATTERNS: Final[dict[str, DateTimePatterns]] = {
    "nb": DateTimePatterns(
        date="EEEE d. MMMM y",
        time=_TIME_PATTERN,
        day="EEEE d. MMMM",
        at="{date} kl. {time}",
        same_day="{date} kl. {start}–{end}",
    ),
    "nn": DateTimePatterns(
        date="EEEE d. MMMM y",
        time=_TIME_PATTERN,
        day="EEEE d. MMMM",
        at="{date} kl. {time}",
        same_day="{date} kl. {start}–{end}",
    ),
    # English for families in Norway: day before month and the 24-hour clock, as on everything else they get.
    "en": DateTimePatterns(
        date="EEEE d MMMM y",
        time=_TIME_PATTERN,
        day="EEEE d MMMM",
        at="{date} at {time}",
        same_day="{date}, {start}–{end}",
    ),
    # "Donnerstag, 3. Dezember 2026, 18:00–19:30 Uhr": German writes "Uhr" after a clock time in running text.
    "de": DateTimePatterns(
        date="EEEE, d. MMMM y",
        time=_TIME_PATTERN,
        day="EEEE, d. MMMM",
        at="{date} um {time} Uhr",
        same_day="{date}, {start}–{end} Uhr",
    ),
    # "czwartek, 3 grudnia 2026, godz. 18:00–19:30": "godz." (godzina) is how Polish notices give a time.
    "pl": DateTimePatterns(
        date="EEEE, d MMMM y",
        time=_TIME_PATTERN,
        day="EEEE, d MMMM",
        at="{date}, godz. {time}",
        same_day="{date}, godz. {start}–{end}",
    ),
    # "четвер, 3 грудня 2026 р. о 18:00"; CLDR's join is a bare comma.
    "uk": DateTimePatterns(
        date="EEEE, d MMMM y\u202f'р'.",
        time=_TIME_PATTERN,
        day="EEEE, d MMMM",
        at="{date} о {time}",
        same_day="{date}, {start}–{end}",
    ),
    # "3 Aralık 2026 Perşembe, saat 18:00–19:30": CLDR joins with a bare space, which runs the weekday into
    # the time.
    "tr": DateTimePatterns(
        date="d MMMM y EEEE",
        time=_TIME_PATTERN,
        day="d MMMM EEEE",
        at="{date}, saat {time}",
        same_day="{date}, saat {start}–{end}",
    ),
}
"""Patterns chosen by hand, keyed by primary language subtag."""

_CLDR_CORRECTIONS: Final[dict[str, dict[str, str]]] = {
    # CLDR's Somali patterns put the month first, as in American English ("Khamiis, Diseembar 3, 2026");
    # Somali writes the day first ("Khamiis, 3 Diseembar 2026"), as Norway does.
    "so": {"date": "EEEE, d MMMM y", "day": "EEEE, d MMMM", "period_end": "d MMMM"},
    # CLDR's Pashto full date has Latin commas ("پنج شنبه 3, دسمبر, 2026"); its long date has none.
    "ps": {"date": "EEEE d MMMM y", "day": "EEEE d MMMM"},
    # The day without the year, written like CLDR's full Kurmanji and Tigrinya dates: "pêncşem, 3ê berfanbarê",
    # "ሓሙስ፣ 3 ታሕሳስ". CLDR's month-day-weekday pattern for them turns the order round.
    # Their CLDR intervals also put the month first ("mijdar 30 – berfanbar 4").
    "ku": {"day": "EEEE, d'ê' MMMM'ê'", "period_end": "d'ê' MMMM'ê'"},
    "ti": {"day": "EEEE፣ d MMMM", "period_end": "d MMMM"},
}
"""Fixes to single CLDR patterns, keyed by Babel's primary language subtag (after `_BABEL_ALIASES`)."""


@cache
def babel_locale(language: str) -> Locale:
    """The Babel locale for a language tag, falling back to the primary subtag and then to English."""
    canonical = canonical_tag(language)
    primary = canonical.split("-", 1)[0]
    for candidate in (canonical.replace("-", "_"), _BABEL_ALIASES.get(primary, primary), _FALLBACK_LOCALE):
        try:
            return Locale.parse(_BABEL_ALIASES.get(candidate, candidate))
        except (UnknownLocaleError, ValueError):
            continue
    raise LookupError("Babel has no English locale data")  # pragma: no cover - Babel always ships English


_BARE_JOIN = re.compile(r"^\{[01]\}\s+\{[01]\}$")


def _list_separator(locale: Locale) -> str:
    # The comma the language puts between items of a list: ", ", Arabic-script "، ", Ethiopic "፣ ". A locale
    # whose list joins with a word (Arabic "و") gets a plain comma instead.
    middle = str(locale.list_patterns["standard"]["middle"])
    separator = middle.removeprefix("{0}").removesuffix("{1}")
    return separator if separator.strip() and not any(char.isalpha() for char in separator) else ", "


def _cldr_join_pattern(locale: Locale) -> str:
    # CLDR joins date and time with patterns like "{1}, {0}" or "{1} 'at' {0}"; quotes mark literal text.
    # Some locales (so, ur, ps, ti, lt, lv, se, kmr, vi) join with a bare space, which runs the year into the
    # time ("3 Diseembar 2026 18:00–19:30"); those get the comma of their own lists between the two.
    joined = str(locale.datetime_formats["full"]).replace("'", "")
    if _BARE_JOIN.match(joined):
        first, second = joined[:3], joined[-3:]
        joined = f"{first}{_list_separator(locale)}{second}"
    return joined.replace("{1}", "{date}").replace("{0}", "{time}")


_ABBREVIATED_WEEKDAY = re.compile(r"'[^']*'|E+")


def _cldr_day_pattern(locale: Locale) -> str:
    # CLDR's pattern for "month name, day and weekday" (skeleton MMMMEd) has the abbreviated weekday; a
    # notice names the whole day, so the field is widened, as UTS #35 does when it matches a longer skeleton.
    pattern = str(locale.datetime_skeletons.get("MMMMEd", "EEEE d MMMM"))
    return _ABBREVIATED_WEEKDAY.sub(lambda match: match[0] if match[0].startswith("'") else "EEEE", pattern)


def _cldr_time_pattern(locale: Locale) -> str:
    skeleton = locale.datetime_skeletons.get(_TIME_SKELETON)
    return str(skeleton) if skeleton is not None else _TIME_PATTERN


@cache
def patterns_for(language: str) -> DateTimePatterns:
    """The patterns for a language: the explicit ones where we have them, else built from CLDR."""
    primary = canonical_tag(language).split("-", 1)[0]
    if primary in EXPLICIT_PATTERNS:
        return EXPLICIT_PATTERNS[primary]
    locale = babel_locale(language)
    at = _cldr_join_pattern(locale)
    patterns = DateTimePatterns(
        date=str(locale.date_formats["full"].pattern),
        time=_cldr_time_pattern(locale),
        day=_cldr_day_pattern(locale),
        at=at,
        same_day=at.replace("{time}", "{start}–{end}"),
    )
    return dataclasses.replace(patterns, **_CLDR_CORRECTIONS.get(locale.language, {}))


def _zone(timezone: str | tzinfo) -> tzinfo:
    return ZoneInfo(timezone) if isinstance(timezone, str) else timezone


def _local(value: datetime, timezone: str | tzinfo) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        # A naive value would be read as the server's local time, which is a different wrong answer per host.
        raise ValueError("expected an aware datetime (with a UTC offset)")
    return value.astimezone(_zone(timezone))


# A notification goes to every guardian of a class with the same meeting times, and each render prints them
# several times (subject, text, HTML, SMS): the Babel calls are the costly part, so their results are kept.
# Equal aware datetimes are one instant whatever their offset, and the instant is all the result depends on.
@lru_cache(maxsize=4096)
def _date_text(value: datetime, timezone: str | tzinfo, language: str) -> str:
    local = _local(value, timezone)
    return babel_dates.format_date(local, patterns_for(language).date, locale=babel_locale(language))


@lru_cache(maxsize=4096)
def _time_text(value: datetime, timezone: str | tzinfo, language: str) -> str:
    local = _local(value, timezone)
    return babel_dates.format_time(
        local, patterns_for(language).time, tzinfo=local.tzinfo, locale=babel_locale(language)
    )


def format_date(value: datetime, timezone: str | tzinfo, language: str) -> str:
    """The local date, e.g. nb "torsdag 3. desember 2026", en "Thursday 3 December 2026"."""
    return _date_text(value, timezone, language)


def format_day(value: date, language: str) -> str:
    """A school day without the year, e.g. nb "fredag 4. desember", en "Friday 4 December"."""
    return babel_dates.format_date(value, patterns_for(language).day, locale=babel_locale(language))


def format_time(value: datetime, timezone: str | tzinfo, language: str) -> str:
    """The local wall-clock time, e.g. "18:00"."""
    return _time_text(value, timezone, language)


def format_datetime(value: datetime, timezone: str | tzinfo, language: str) -> str:
    """Date and time, e.g. nb "torsdag 3. desember 2026 kl. 18:00", en "Thursday 3 December 2026 at 18:00"."""
    return patterns_for(language).at.format(
        date=format_date(value, timezone, language), time=format_time(value, timezone, language)
    )


def format_time_range(start: datetime, end: datetime, timezone: str | tzinfo, language: str) -> str:
    """When a meeting takes place, e.g. nb "torsdag 3. desember 2026 kl. 18:00–19:30".

    A meeting that ends on a later local day shows both dates.
    """
    patterns = patterns_for(language)
    if _local(start, timezone).date() != _local(end, timezone).date():
        return patterns.across_days.format(
            start=format_datetime(start, timezone, language), end=format_datetime(end, timezone, language)
        )
    return patterns.same_day.format(
        date=format_date(start, timezone, language),
        start=format_time(start, timezone, language),
        end=format_time(end, timezone, language),
    )


_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")


def paragraphs(text: str | None) -> Markup:
    """Plain text as HTML: escaped first, then blank-line-separated paragraphs become `<p>`, newlines `<br>`.

    Free text from teachers may contain `<`, `&` or template syntax; escaping before adding tags means none of
    it can become markup.
    """
    if not text:
        return Markup("")
    normalised = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    rendered = [
        Markup('<p style="margin:0 0 12px 0;">{}</p>').format(Markup("<br>\n").join(escape(block).split("\n")))
        for block in _BLANK_LINES.split(normalised)
        if block.strip()
    ]
    return Markup("\n").join(rendered)
