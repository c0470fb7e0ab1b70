"""Mixed-direction text: Norwegian names, rooms and titles inside Arabic sentences, and the other way round.

The Unicode bidirectional algorithm lays out a run of Latin letters inside Arabic text correctly on its own,
but it guesses wrong at the edges: neutral characters next to an inserted value ("Møte (7B)" followed by "،")
take the direction of the sentence and jump to the wrong side, and a line whose first strong letter belongs
to an inserted value ("Foreldremøte 7B کی یاد دہانی" in Urdu, which puts the object first) is laid out left to
right as a whole. Isolating each inserted value fixes both: the value gets its own direction, its neighbours
see it as one neutral character, and the line takes its direction from the translated words around it.

- HTML: every value a person typed is wrapped in `<bdi>`, in every language. It costs nothing, and a guardian
  can have an Arabic name in a Norwegian e-mail too.
- Plain text (the text/plain e-mail part, subjects, SMS): FSI (U+2068) … PDI (U+2069), but only around a
  value that holds letters of the other direction than the language rendered. In an SMS each mark is a
  UTF-16 unit, and any one of them turns a GSM-7 text into UCS-2 (160 characters a segment down to 70). So a
  Norwegian SMS with Norwegian values gets none and stays GSM-7; an Arabic SMS (UCS-2 anyway) pays 2 units
  per Latin value, about 10 of the 201 units three segments hold. That is worth it: the place and the
  title are what a parent reads the SMS for, and a garbled "Rom 204, Bjølsen skole" is the failure that
  matters. Phones older than isolates (Unicode 6.3, 2013) hide the marks rather than show them: U+2060 to
  U+206F has long been a range Unicode tells software to leave invisible.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from markupsafe import Markup

from notify_shared.rendering.languages import Direction

FSI: Final = "\u2068"
"""FIRST STRONG ISOLATE: starts a run laid out in the direction of its own first strong letter."""
PDI: Final = "\u2069"
"""POP DIRECTIONAL ISOLATE: ends the run an isolate started."""
ISOLATE_INITIATORS: Final = "\u2066\u2067\u2068"  # LRI, RLI, FSI
ISOLATE_MARKS: Final = ISOLATE_INITIATORS + PDI

# Bidi classes of the letters that pull a run the other way, per direction of the surrounding text.
_OPPOSITE: Final[dict[Direction, frozenset[str]]] = {"ltr": frozenset({"R", "AL"}), "rtl": frozenset({"L"})}


def needs_isolation(value: str, direction: Direction) -> bool:
    """Whether `value` holds a letter written in the other direction than text in `direction`.

    Digits and punctuation alone lay out the same in both directions, so "204" or "7" need no isolate.
    """
    opposite = _OPPOSITE[direction]
    return any(unicodedata.bidirectional(char) in opposite for char in value)


def isolate_text(value: str, direction: Direction) -> str:
    """`value` between FSI and PDI when it runs against `direction` (see the module docstring), else as is."""
    if not value or not needs_isolation(value, direction):
        return value
    return f"{FSI}{value}{PDI}"


def isolate_html(value: object) -> Markup:
    """`value` escaped (unless it already is `Markup`) inside `<bdi>`; nothing for an empty value."""
    if not str(value):
        return Markup("")
    return Markup("<bdi>{}</bdi>").format(value)


def close_isolates(text: str) -> str:
    """`text` with a PDI added for every isolate left open, e.g. after an SMS line was cut inside a value."""
    depth = 0
    for char in text:
        if char in ISOLATE_INITIATORS:
            depth += 1
        elif char == PDI and depth:
            depth -= 1
    return text + PDI * depth


def without_isolates(text: str) -> str:
    """`text` without isolate marks: what a reader sees, for measuring and comparing."""
    return text.translate({ord(mark): None for mark in ISOLATE_MARKS})
