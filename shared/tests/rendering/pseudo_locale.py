"""Pseudo-translations: catalogs that stand in for languages whose translators are not done yet.

A pseudo-translation keeps every placeholder and the sentence structure of English but makes the text what
the real ones will be: longer (Polish, Ukrainian and Lithuanian run 20–35 % past English), outside GSM-7 (so
an SMS goes as UCS-2), and, for a right-to-left language, in Arabic letters. Rendering with one shows whether
the templates hold up (segment budgets, bidi isolation) before the real catalog arrives.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

_PLACEHOLDER = re.compile(r"%\([a-z_]+\)s")
_ARABIC = dict(zip("abcdefghijklmnopqrstuvwxyz", "ابتثجحخدذرزسشصضطظعغفقكلمنه", strict=True))
_LONGER_LATIN = {"a": "ą", "e": "ęe", "o": "ó", "u": "ūu", "i": "į", "s": "š", "c": "č", "z": "ž"}


def _pseudo(text: str, right_to_left: bool) -> str:
    def transform(piece: str) -> str:
        if right_to_left:
            # Arabic words run about as long as English ones; a tenth more covers the longer phrasings.
            letters = "".join(_ARABIC.get(char.lower(), char) for char in piece)
            return letters + "ـ" * (len(piece) // 10)
        # Diacritics outside GSM-7, and about a third longer than English.
        return "".join(_LONGER_LATIN.get(char, char) for char in piece)

    parts = _PLACEHOLDER.split(text)
    placeholders = _PLACEHOLDER.findall(text)
    out = [transform(parts[0])]
    for placeholder, rest in zip(placeholders, parts[1:], strict=True):
        out += [placeholder, transform(rest)]
    return "".join(out)


def write_pseudo_locale(shipped: Path, target: Path, languages: dict[str, bool]) -> Path:
    """A copy of `shipped` with a pseudo-translated catalog for each language (value: right to left).

    Catalogs already shipped for those languages are replaced, so the result does not depend on how far the
    translators have come.
    """
    shutil.copytree(shipped, target)
    with (shipped / "en" / "LC_MESSAGES" / "messages.po").open("rb") as english_file:
        english = read_po(english_file, locale="en")
    for language, right_to_left in languages.items():
        catalog = Catalog(locale="ar" if right_to_left else "pl", domain="messages")
        for message in english:
            if not message.id:
                continue
            if isinstance(message.id, tuple):
                one, many = (_pseudo(str(part), right_to_left) for part in message.id)
                strings: str | tuple[str, ...] = tuple([one] + [many] * (catalog.num_plurals - 1))
            else:
                strings = _pseudo(str(message.id), right_to_left)
            catalog.add(message.id, strings, flags=message.flags - {"fuzzy"})
        directory = target / language / "LC_MESSAGES"
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / "messages.po").open("wb") as po_file:
            write_po(po_file, catalog)
    return target
