"""Which language a notification is rendered in, and which way that language is written.

Languages are discovered from the catalogs under `notify_shared/locale/<lang>/LC_MESSAGES/messages.po`, so
adding a language is a matter of dropping in a translated `.po` file (see `locale/README.md`).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Final, Literal

Direction = Literal["ltr", "rtl"]

DEFAULT_LANGUAGE: Final = "nb"
"""The last resort: bokmål is the written standard most Norwegian schools use."""

RIGHT_TO_LEFT: Final[frozenset[str]] = frozenset({"ar", "ur", "prs", "ps", "fa", "he"})
"""Primary language subtags written right to left: Arabic, Urdu, Dari, Pashto, Persian, Hebrew."""

# Tags that mean a language we hold under another name. "no" is what many admin systems send for Norwegian
# without saying which standard; bokmål is by far the most common reading of it.
_ALIASES: Final[dict[str, str]] = {"no": "nb", "no-NO": "nb"}

CATALOG_DOMAIN: Final = "messages"


def locale_directory() -> Traversable:
    """The `locale/` directory inside the installed package."""
    return files("notify_shared").joinpath("locale")


def canonical_tag(tag: str) -> str:
    """A BCP 47 tag in the form catalogs are keyed by: `nb`, `nb-NO`, `pt-BR`, `zh-Hant`.

    Gettext directories use `_` (`pt_BR`), language tags use `-`; both are accepted.
    """
    primary, *rest = tag.replace("_", "-").split("-")
    parts = [primary.lower()]
    for part in rest:
        parts.append(part.upper() if len(part) == 2 else part.title() if len(part) == 4 else part.lower())
    return "-".join(parts)


@cache
def available_languages() -> frozenset[str]:
    """The language tags that have a catalog, read once from the locale directory."""
    found: set[str] = set()
    for entry in locale_directory().iterdir():
        if entry.is_dir() and entry.joinpath("LC_MESSAGES", f"{CATALOG_DOMAIN}.po").is_file():
            found.add(canonical_tag(entry.name))
    return frozenset(found)


def _candidates(tag: str) -> list[str]:
    # The full tag first (a regional catalog, if one exists), then the primary subtag.
    canonical = canonical_tag(tag)
    candidates = [_ALIASES.get(canonical, canonical)]
    primary = canonical.split("-", 1)[0]
    candidates.append(_ALIASES.get(primary, primary))
    return candidates


def catalog_language(tag: str) -> str | None:
    """The catalog `tag` itself gets (`nb-NO` gets `nb`, `no` gets `nb`), or None when it has none.

    None means a guardian with this tag is rendered in the school's standard instead (see `choose_language`).
    """
    available = available_languages()
    return next((candidate for candidate in _candidates(tag) if candidate in available), None)


def choose_language(wanted: str | None, school_standard: str | None) -> str:
    """The language to render in: the first of these that has a catalog.

    1. the guardian's language, as given (`nb-NO`) and then its primary subtag (`nb`); `no` means `nb`;
    2. the school's written standard (`nb` or `nn`);
    3. `nb`.

    Returns the tag actually used, so the status report can say which language the guardian got.
    """
    available = available_languages()
    chain: list[str] = []
    if wanted:
        chain.extend(_candidates(wanted))
    if school_standard:
        chain.extend(_candidates(school_standard))
    chain.append(DEFAULT_LANGUAGE)
    for candidate in chain:
        if candidate in available:
            return candidate
    raise LookupError(f"no catalog for {DEFAULT_LANGUAGE!r}; the locale directory is incomplete")


def direction_of(language: str) -> Direction:
    """`rtl` for languages written right to left, else `ltr`."""
    primary = canonical_tag(language).split("-", 1)[0]
    return "rtl" if primary in RIGHT_TO_LEFT else "ltr"
