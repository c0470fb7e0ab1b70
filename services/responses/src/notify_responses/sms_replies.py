"""Reading an SMS reply ("JA", "nei", "Ja!", "tak") as an answer. Pure: no I/O.

A reply is read in the guardian's language and always in Norwegian and English too, since the invitation SMS asks
"Svar JA eller NEI" and many parents answer in Norwegian whatever their language. Case, accents, punctuation and
emoji do not matter; the first word (or a known phrase) decides, so "Ja, vi kommer begge" is a yes.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from notify_shared.contract import Rsvp

# The words for each answer; each written as people type it, accents included (they are folded away when read).
_WORDS: Final[dict[str, dict[Rsvp, tuple[str, ...]]]] = {
    "nb": {
        Rsvp.ACCEPTED: ("ja", "jepp", "jo", "kommer", "ok"),
        Rsvp.DECLINED: ("nei", "kan ikke", "kommer ikke"),
        Rsvp.TENTATIVE: ("kanskje", "vet ikke"),
    },
    "nn": {
        Rsvp.ACCEPTED: ("ja", "jau", "kjem"),
        Rsvp.DECLINED: ("nei", "kan ikkje", "kjem ikkje"),
        Rsvp.TENTATIVE: ("kanskje", "veit ikkje"),
    },
    "en": {
        Rsvp.ACCEPTED: ("yes", "y", "yeah", "yep"),
        Rsvp.DECLINED: ("no", "n", "nope", "cannot", "can't"),
        Rsvp.TENTATIVE: ("maybe", "not sure"),
    },
    "se": {Rsvp.ACCEPTED: ("juo",), Rsvp.DECLINED: ("ii",), Rsvp.TENTATIVE: ("soaitá",)},
    "pl": {Rsvp.ACCEPTED: ("tak",), Rsvp.DECLINED: ("nie",), Rsvp.TENTATIVE: ("może", "nie wiem")},
    "uk": {Rsvp.ACCEPTED: ("так",), Rsvp.DECLINED: ("ні",), Rsvp.TENTATIVE: ("можливо", "не знаю")},
    "lt": {Rsvp.ACCEPTED: ("taip",), Rsvp.DECLINED: ("ne",), Rsvp.TENTATIVE: ("galbūt", "nežinau")},
    "lv": {Rsvp.ACCEPTED: ("jā",), Rsvp.DECLINED: ("nē",), Rsvp.TENTATIVE: ("varbūt",)},
    "ar": {Rsvp.ACCEPTED: ("نعم", "ايوه"), Rsvp.DECLINED: ("لا",), Rsvp.TENTATIVE: ("ربما",)},
    "so": {Rsvp.ACCEPTED: ("haa",), Rsvp.DECLINED: ("maya",), Rsvp.TENTATIVE: ("malaha",)},
    "ti": {Rsvp.ACCEPTED: ("እወ",), Rsvp.DECLINED: ("ኣይፋል",), Rsvp.TENTATIVE: ("ምናልባት",)},
    "ur": {Rsvp.ACCEPTED: ("ہاں", "جی ہاں"), Rsvp.DECLINED: ("نہیں",), Rsvp.TENTATIVE: ("شاید",)},
    "prs": {Rsvp.ACCEPTED: ("بلی", "بله"), Rsvp.DECLINED: ("نخیر", "نه"), Rsvp.TENTATIVE: ("شاید",)},
    "ps": {Rsvp.ACCEPTED: ("هو",), Rsvp.DECLINED: ("نه",), Rsvp.TENTATIVE: ("شاید", "ښایي")},
    "kmr": {Rsvp.ACCEPTED: ("erê", "belê"), Rsvp.DECLINED: ("na", "nayê"), Rsvp.TENTATIVE: ("belkî",)},
    "tr": {Rsvp.ACCEPTED: ("evet",), Rsvp.DECLINED: ("hayır",), Rsvp.TENTATIVE: ("belki",)},
    "vi": {Rsvp.ACCEPTED: ("có", "co"), Rsvp.DECLINED: ("không", "khong"), Rsvp.TENTATIVE: ("có thể", "chưa biết")},
    "de": {Rsvp.ACCEPTED: ("ja",), Rsvp.DECLINED: ("nein",), Rsvp.TENTATIVE: ("vielleicht",)},
}
_ALWAYS: Final = ("nb", "nn", "en")
_NOT_WORD: Final = re.compile(r"[^\w\s']+")


def fold(text: str) -> str:
    """Lower case, accents and marks removed, punctuation and emoji dropped, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    without_marks = "".join(character for character in decomposed if not unicodedata.combining(character))
    # Arabic-script letters with marks of their own (ہ, ی) survive NFKD; tatweel and zero-width joiners do not matter.
    # Turkish dotless ı has no decomposition; "HAYIR" folds to "hayir", so "hayır" must too.
    cleaned = without_marks.replace("ı", "i").replace("\u0640", "").replace("\u200c", " ").replace("\u200d", "")
    return " ".join(_NOT_WORD.sub(" ", cleaned).split())


def read_reply(text: str, guardian_language: str | None) -> Rsvp | None:
    """The answer a reply gives, or None when it gives none that can be told for sure."""
    folded = fold(text)
    if not folded:
        return None
    primary = (guardian_language or "").split("-", 1)[0].lower()
    return _longest(folded, dict.fromkeys((primary, *_ALWAYS)))


def _longest(folded: str, languages: dict[str, None]) -> Rsvp | None:
    # The longest word or phrase that the reply is, or starts with, decides: "kommer ikke" over "kommer",
    # "có thể" over "có". Two answers of the same length (a word that means yes in one language and no in
    # another) decide nothing.
    best: tuple[int, Rsvp] | None = None
    tie = False
    for language in languages:
        for answer, words in _WORDS.get(language, {}).items():
            for word in map(fold, words):
                if folded == word or folded.startswith(word + " "):
                    if best is None or len(word) > best[0]:
                        best, tie = (len(word), answer), False
                    elif len(word) == best[0] and answer is not best[1]:
                        tie = True
    return None if best is None or tie else best[1]
