"""Dates, times and free text as a parent reads them: in the school's time zone and the guardian's language.

Events carry aware datetimes (with a UTC offset); a parent needs the local wall-clock time at the school, so
every value is converted to the school's IANA zone first. That also gets daylight saving right: the offset
comes from the zone's rules for that date, not from the offset the event happened to be sent with.

Norwegian and English get explicit patterns ("torsdag 3. desember 2026 kl. 18:00"), because CLDR's defaults
("torsdag 3. desember 2026, 18:00:00 normaltid for Sentral-Europa") read like a machine. Other languages use
CLDR's full date, short time and its own way of joining them until someone writes patterns for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import cache, lru_cache
from typing import Final
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from markupsafe import Markup, escape

from notify_shared.rendering.languages import canonical_tag

# Language tags whose CLDR data lives under another name in Babel.
_BABEL_ALIASES: Final[dict[str, str]] = {"no": "nb", "prs": "fa_AF", "kmr": "ku"}

_FALLBACK_LOCALE: Final = "en"


@dataclass(frozen=True)
class DateTimePatterns:
    """How one language writes a meeting time.

    `date` and `time` are CLDR patterns; the others are `str.format` templates.

    `at` joins a date and a time (`{date}`, `{time}`); `same_day` joins a date with a start and an end time
    (`{date}`, `{start}`, `{end}`); `across_days` joins two `at` values (`{start}`, `{end}`).
    """

    date: str
    time: str
    at: str
    same_day: str
    across_days: str = "{start} – {end}"


# Ranges use an en dash (U+2013), as Norwegian and English typography want; SMS makes it a hyphen.
EXPLICIT_PATTERNS: Final[dict[str, DateTimePatterns]] = {
    "nb": DateTimePatterns(
        date="EEEE d. MMMM y", time="HH:mm", at="{date} kl. {time}", same_day="{date} kl. {start}–{end}"
    ),
    "nn": DateTimePatterns(
        date="EEEE d. MMMM y", time="HH:mm", at="{date} kl. {time}", same_day="{date} kl. {start}–{end}"
    ),
    # English for families in Norway: day before month and the 24-hour clock, as on everything else they get.
    "en": DateTimePatterns(date="EEEE d MMMM y", time="HH:mm", at="{date} at {time}", same_day="{date}, {start}–{end}"),
}
"""Patterns chosen by hand, keyed by primary language subtag."""


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


def _cldr_join_pattern(locale: Locale) -> str:
    # CLDR joins date and time with patterns like "{1}, {0}" or "{1} 'at' {0}"; quotes mark literal text.
    joined = str(locale.datetime_formats["full"]).replace("'", "")
    return joined.replace("{1}", "{date}").replace("{0}", "{time}")


@cache
def patterns_for(language: str) -> DateTimePatterns:
    """The patterns for a language: the explicit ones for nb, nn and en, else built from CLDR."""
    primary = canonical_tag(language).split("-", 1)[0]
    if primary in EXPLICIT_PATTERNS:
        return EXPLICIT_PATTERNS[primary]
    locale = babel_locale(language)
    at = _cldr_join_pattern(locale)
    return DateTimePatterns(
        date=locale.date_formats["full"].pattern,
        time=locale.time_formats["short"].pattern,
        at=at,
        same_day=at.replace("{time}", "{start}–{end}"),
    )


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
