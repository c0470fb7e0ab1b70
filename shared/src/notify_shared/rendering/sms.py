"""How an SMS text travels: GSM-7 or UCS-2, and how many billed segments it takes (3GPP TS 23.038/23.040).

A text goes as GSM-7 only when every character is in the GSM 03.38 default alphabet or its extension table;
one character outside them (an emoji, Arabic, a typographic dash) switches the whole message to UCS-2, which
holds less than half as many characters per segment. That is why `gsm7_friendly` replaces typographic
punctuation with plain look-alikes before the text is measured and sent.
"""

from __future__ import annotations

import re
from typing import Final, Literal

SmsEncoding = Literal["GSM-7", "UCS-2"]

# The GSM 03.38 default alphabet in code-point order 0x00-0x7F, row by row. 0x1B is the escape to the
# extension table, not a character of its own, so it is left out.
GSM7_BASIC: Final[frozenset[str]] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ"  # 0x1B, the escape, sits here
    "ÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
"""The 127 characters of the GSM 03.38 default alphabet; each costs one septet."""

GSM7_EXTENSION: Final[frozenset[str]] = frozenset("\f^{}\\[~]|€")
"""The GSM 03.38 extension table; each character costs two septets (escape + code)."""

_SINGLE_GSM7 = 160
_PART_GSM7 = 153  # 7 septets of each part go to the concatenation header
_SINGLE_UCS2 = 70
_PART_UCS2 = 67

# Typographic characters that Babel, word processors and phones produce, with a GSM-7 stand-in that a reader
# cannot tell apart in an SMS. Letters are never replaced: a guardian's or school's name is spelled as given.
_PLAIN_STAND_INS: Final[dict[int, str]] = str.maketrans(
    {
        "\u2010": "-",  # hyphen
        "\u2011": "-",  # non-breaking hyphen
        "\u2012": "-",  # figure dash
        "\u2013": "-",  # en dash, as between the times of a meeting
        "\u2014": "-",  # em dash
        "\u2212": "-",  # minus sign
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u00ab": '"',  # « » are the Norwegian quotation marks
        "\u00bb": '"',
        "\u2033": '"',
        "\u2026": "...",
        "\u00a0": " ",  # no-break space
        "\u2007": " ",
        "\u2009": " ",  # thin space
        "\u202f": " ",  # narrow no-break space, used by CLDR in some time formats
        "\u2002": " ",
        "\u2003": " ",
        "\u200a": " ",
        "\u200b": "",  # zero-width space
        "\u2060": "",  # word joiner
        "\ufeff": "",  # byte-order mark
        "\u00ad": "",  # soft hyphen
        "\t": " ",
    }
)


_GSM7_ANY: Final[frozenset[str]] = GSM7_BASIC | GSM7_EXTENSION
# The SMS fitting measures a dozen candidate texts per SMS; these find the few characters that cost extra (or are
# replaced) in C, so the common text is measured without a step per character.
_EXTENSION_CHARACTER = re.compile("[" + re.escape("".join(sorted(GSM7_EXTENSION))) + "]")
_ASTRAL_CHARACTER = re.compile("[\U00010000-\U0010ffff]")
_STAND_IN_CHARACTER = re.compile("[" + re.escape("".join(chr(code) for code in sorted(_PLAIN_STAND_INS))) + "]")


def sms_encoding(text: str) -> SmsEncoding:
    """The encoding an SMS gateway will use for `text`: GSM-7 when every character allows it, else UCS-2."""
    # A set comparison rather than a loop per character: the SMS fitting measures many candidate texts.
    return "GSM-7" if _GSM7_ANY.issuperset(text) else "UCS-2"


def _units(text: str, encoding: SmsEncoding) -> list[int]:
    # The cost of each character in the encoding's units: septets for GSM-7, UTF-16 code units for UCS-2.
    if encoding == "GSM-7":
        return [2 if char in GSM7_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def sms_segments(text: str, encoding: SmsEncoding | None = None) -> int:
    """How many SMS parts `text` is billed as: in `encoding` when given and enough for it, else in the one
    `text` needs.

    GSM-7 fits 160 septets in a single message and 153 in each part of a longer one (extension characters
    cost two); UCS-2 fits 70 UTF-16 code units, or 67 per part. An escape sequence or a surrogate pair is
    never split across two parts, so a part can end a unit short. An empty text is still one message.
    """
    if encoding != "UCS-2":  # a text that needs UCS-2 cannot be measured as GSM-7
        encoding = sms_encoding(text)
    single, per_part = (_SINGLE_GSM7, _PART_GSM7) if encoding == "GSM-7" else (_SINGLE_UCS2, _PART_UCS2)
    if len(text) * 2 <= single:  # even if every character cost two units
        return 1
    costly = _EXTENSION_CHARACTER if encoding == "GSM-7" else _ASTRAL_CHARACTER
    if costly.search(text) is None:
        # Every character costs one unit, so no part ends short: whole parts of `per_part` units.
        return 1 if len(text) <= single else -(-len(text) // per_part)
    units = _units(text, encoding)
    if sum(units) <= single:
        return 1
    parts, used = 1, 0
    for cost in units:
        if used + cost > per_part:
            parts += 1
            used = 0
        used += cost
    return parts


def gsm7_friendly(text: str) -> str:
    """`text` with typographic punctuation and spaces replaced by plain GSM-7 ones, when that is enough.

    If the text needs UCS-2 anyway (Arabic, emoji, a letter outside GSM-7), it is returned unchanged: the
    replacement would not save a segment, and in right-to-left text the marks and spaces may matter.
    """
    # Only the few characters to replace are visited; a translate() call would look up every character.
    plain = _STAND_IN_CHARACTER.sub(_stand_in, text)
    return plain if sms_encoding(plain) == "GSM-7" else text


def _stand_in(found: re.Match[str]) -> str:
    return str(_PLAIN_STAND_INS[ord(found.group())])
