"""Field types shared by every event: single-line text, language tags, contact points."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StringConstraints, WithJsonSchema

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Explicit embeddings, overrides and isolates (LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI). Left unpaired in a
# name they turn the rest of a subject or SMS line around ("Kari\u202e" would make what follows read backwards);
# the renderer isolates every value itself (notify_shared.rendering.bidi), so they are dropped from one-liners.
_DIRECTIONAL_FORMATTING = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


def has_control_characters(value: str) -> bool:
    """Whether `value` holds a C0 or C1 control character (CR and LF included) or a line or paragraph separator."""
    return _CONTROL_CHARACTERS.search(value) is not None


def _fold_to_one_line(value: str) -> str:
    # Names, titles and places end up in email headers, SMS and calendar fields: a CR/LF or other control
    # character there is at best noise and at worst header injection, so it becomes a single space.
    return " ".join(_CONTROL_CHARACTERS.sub(" ", _DIRECTIONAL_FORMATTING.sub("", value)).split())


# Far enough from datetime's limits (years 1 and 9999) that moving a time into any zone (±14 h) or a few weeks
# back for a reminder or a digest never overflows; an admin system has no business outside these years.
FIRST_YEAR = 1900
LAST_YEAR = 2199
_EARLIEST = dt.datetime(FIRST_YEAR, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(LAST_YEAR + 1, 1, 1, tzinfo=dt.UTC)


def _within_supported_years(value: dt.datetime) -> dt.datetime:
    # Compared as instants: 9999-12-31T23:00-12:00 is a valid ISO 8601 time that no zone can show.
    if not _EARLIEST <= value < _LATEST:
        raise ValueError(f"must lie in the years {FIRST_YEAR}–{LAST_YEAR}")
    return value


def _day_within_supported_years(value: dt.date) -> dt.date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must lie in the years {FIRST_YEAR}–{LAST_YEAR}")
    return value


# "09:00" or "08:30:00": a wall-clock time at the school. Not JSON Schema's `format: time`, which is RFC 3339's
# full-time and needs a UTC offset that a timetable does not have. [0-9] rather than \d: Python's \d also matches
# other scripts' digits, ECMAScript's (what Ajv and other validators use) does not.
LOCAL_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
_LOCAL_TIME = re.compile(LOCAL_TIME_PATTERN)


def _local_time_as_published(value: object) -> object:
    # pydantic's own time parsing also takes offsets, fractions and seconds since midnight as a number; the
    # contract promises only the pattern above, so nothing else is let through that a schema validator would refuse.
    if isinstance(value, dt.time):
        if value.tzinfo is not None or value.microsecond:
            raise ValueError("must be a local time of day in whole seconds, without a UTC offset")
        return value
    if not isinstance(value, str) or not _LOCAL_TIME.fullmatch(value):
        raise ValueError("must be a local time of day as HH:MM or HH:MM:SS, such as '09:00'")
    return value


def _normalise_language_tag(value: str) -> str:
    if not _LANGUAGE_TAG.match(value):
        raise ValueError("must be a BCP 47 language tag such as 'nb', 'nn', 'en', 'pl' or 'uk-UA'")
    primary, *rest = value.split("-")
    # Case is not significant in BCP 47; one canonical form keeps catalog lookups simple.
    parts = [primary.lower()] + [part.upper() if len(part) == 2 else part.lower() for part in rest]
    return "-".join(parts)


OneLine = Annotated[str, AfterValidator(_fold_to_one_line), StringConstraints(min_length=1, max_length=300)]
"""Text that is shown on one line (a name, a title, a place); control characters (C0, C1, line and paragraph
separators) fold into spaces and explicit bidi controls are dropped."""

OptionalLongText = Annotated[
    str | None,
    Field(max_length=20_000, description="Free text, plain or Markdown; always escaped when rendered."),
]

Instant = Annotated[AwareDatetime, AfterValidator(_within_supported_years)]
"""A point in time with its UTC offset, in the years 1900–2199 (so it can be shown in any time zone)."""

LocalTimeOfDay = Annotated[
    dt.time,
    BeforeValidator(_local_time_as_published),
    WithJsonSchema({"type": "string", "pattern": LOCAL_TIME_PATTERN}),
]
"""A time of day on the school's clock ("09:00", "08:30:00"), without date or UTC offset."""

SchoolDay = Annotated[dt.date, AfterValidator(_day_within_supported_years)]
"""A calendar date in the years 1900–2199."""

Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/\-]*$"),
]
"""An id from the admin system: printable, no spaces, safe to log."""

LanguageTag = Annotated[
    str,
    AfterValidator(_normalise_language_tag),
    Field(
        description="BCP 47 language tag: nb, nn, se, en, pl, uk, lt, ar, so, ti, ur, prs, ps, kmr, tr, vi, de, …",
        examples=["nb", "nn", "pl", "uk", "ar"],
        # Checked by the validator above, with its own message; stated here so schema validators check it too.
        json_schema_extra={"pattern": _LANGUAGE_TAG.pattern},
    ),
]
