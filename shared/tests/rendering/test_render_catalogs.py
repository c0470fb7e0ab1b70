"""The catalogs are complete: every string in the templates is translated, naturally, in every language."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

import notify_shared
from notify_shared.rendering import available_languages

PACKAGE = Path(notify_shared.__file__).parent
SHARED = PACKAGE.parent.parent
LOCALE = PACKAGE / "locale"


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=locale)


def _ids(catalog: Catalog) -> set[str]:
    return {str(message.id) for message in catalog if message.id}


def test_the_template_file_matches_the_strings_in_the_templates() -> None:
    # Catches a template edit without `pybabel extract` (see locale/README.md).
    with (SHARED / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)  # type: ignore[no-untyped-call]  # Babel is unannotated here
    extracted = {str(message) for _, _, message, _, _ in extract_from_dir(str(SHARED), method_map, options_map)}

    assert extracted == _ids(_read(LOCALE / "messages.pot"))


@pytest.mark.parametrize("language", ["nb", "nn", "en"])
def test_every_string_is_translated_and_none_is_fuzzy(language: str) -> None:
    template_ids = _ids(_read(LOCALE / "messages.pot"))
    catalog = _read(LOCALE / language / "LC_MESSAGES" / "messages.po", language)

    missing = template_ids - _ids(catalog)
    untranslated = sorted(str(m.id) for m in catalog if m.id and not m.string)
    fuzzy = sorted(str(m.id) for m in catalog if m.id and m.fuzzy)
    assert not missing, f"{language}: not in the catalog: {sorted(missing)}"
    assert not untranslated, f"{language}: untranslated: {untranslated}"
    assert not fuzzy, f"{language}: fuzzy: {fuzzy}"
    assert not catalog.fuzzy, f"{language}: the catalog header is marked fuzzy"


def test_every_discovered_catalog_keeps_the_placeholders() -> None:
    for language in available_languages():
        catalog = _read(LOCALE / language / "LC_MESSAGES" / "messages.po", language)
        problems = [(str(message.id), [str(e) for e in errors]) for message, errors in catalog.check()]
        assert not problems, f"{language}: {problems}"


def test_nynorsk_is_not_bokmal() -> None:
    nb = {str(m.id): str(m.string) for m in _read(LOCALE / "nb" / "LC_MESSAGES" / "messages.po", "nb") if m.id}
    nn = {str(m.id): str(m.string) for m in _read(LOCALE / "nn" / "LC_MESSAGES" / "messages.po", "nn") if m.id}
    text = " ".join(nn.values())

    for bokmal_only in (" ikke ", " fra ", "skolen", "Vennlig", "hilsen", " kommer", "Tidligere"):
        assert bokmal_only not in text, bokmal_only
    assert sum(nb[key] != nn[key] for key in nb) >= len(nb) // 2


def test_only_po_files_are_committed() -> None:
    assert not list(LOCALE.rglob("*.mo"))
