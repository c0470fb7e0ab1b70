"""Field types shared by every event: single-line text, language tags, contact points."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


def _fold_to_one_line(value: str) -> str:
    # Names, titles and places end up in email headers, SMS and calendar fields: a CR/LF or other control
    # character there is at best noise and at worst header injection, so it becomes a single space.
    return " ".join(_CONTROL_CHARACTERS.sub(" ", value).split())


def _normalise_language_tag(value: str) -> str:
    if not _LANGUAGE_TAG.match(value):
        raise ValueError("must be a BCP 47 language tag such as 'nb', 'nn', 'en', 'pl' or 'uk-UA'")
    primary, *rest = value.split("-")
    # Case is not significant in BCP 47; one canonical form keeps catalog lookups simple.
    parts = [primary.lower()] + [part.upper() if len(part) == 2 else part.lower() for part in rest]
    return "-".join(parts)


OneLine = Annotated[str, AfterValidator(_fold_to_one_line), StringConstraints(min_length=1, max_length=300)]
"""Text that is shown on one line (a name, a title, a place); control characters fold into spaces."""

OptionalLongText = Annotated[
    str | None,
    Field(max_length=20_000, description="Free text, plain or Markdown; always escaped when rendered."),
]

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
    ),
]
