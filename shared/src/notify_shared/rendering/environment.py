"""The Jinja2 environments the notification templates render in: one per language, built once, sandboxed.

Why one environment per language: `jinja2.ext.i18n` installs `gettext` as an environment global. Swapping the
translations on a shared environment for each render would let two concurrent renders (many asyncio tasks,
possibly worker threads) see each other's language. A cached environment per language has no
shared mutable state, and each keeps its own compiled templates.

Why a sandbox: the templates are ours, but everything in the context (titles, agendas, notes, names) is typed
by people. It is only ever passed as data, never compiled, so `{{ 7*7 }}` in a title is printed as typed; the
sandbox is the second line, in case a template ever calls something on user data it should not.
"""

from __future__ import annotations

import io
import logging
import textwrap
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from typing import Any, Final, cast

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import (
    Environment,
    PackageLoader,
    StrictUndefined,
    TemplateRuntimeError,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from notify_shared.rendering import formatting
from notify_shared.rendering.languages import (
    CATALOG_DOMAIN,
    available_languages,
    canonical_tag,
    locale_directory,
)

logger = logging.getLogger(__name__)

TEMPLATE_PACKAGE = "notify_shared"
TEMPLATE_DIRECTORY = "templates"


class TemplateLoader(PackageLoader):
    """The package's templates, plus an HTML twin of the shared sentence file.

    Jinja marks whatever a macro returns as safe when the *calling* template autoescapes, however the macro's
    own file was compiled. A macro from `_macros.txt` called in `body.html` would therefore put a title or a
    name into the HTML unescaped. So HTML templates import `_macros.html`, which is served from the source of
    `_macros.txt`: being named `.html`, it is compiled with autoescaping, and its `{% trans %}` blocks escape
    the values they insert. One file of sentences, compiled once for text and once for HTML.
    """

    HTML_TWINS: Final[Mapping[str, str]] = {"_macros.html": "_macros.txt"}

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool] | None]:
        return super().get_source(environment, self.HTML_TWINS.get(template, template))


@cache
def translations_for(language: str) -> Translations:
    """The compiled catalog for a language with a `.po` file, compiled in memory once per process.

    Only `.po` files are kept in the repository; compiling here means a catalog can never be out of date
    with a forgotten `.mo`. Fuzzy entries are left out, as `msgfmt` would, so an unchecked guess never
    reaches a parent: they fall back to the English msgid.
    """
    wanted = canonical_tag(language)
    for entry in locale_directory().iterdir():
        if entry.is_dir() and canonical_tag(entry.name) == wanted:
            with entry.joinpath("LC_MESSAGES", f"{CATALOG_DOMAIN}.po").open("rb") as po_file:
                catalog = read_po(po_file, locale=entry.name, domain=CATALOG_DOMAIN)
            buffer = io.BytesIO()
            write_mo(buffer, catalog, use_fuzzy=False)
            buffer.seek(0)
            return Translations(fp=buffer, domain=CATALOG_DOMAIN)
    raise LookupError(f"no catalog for language {language!r}")


def _school_zone(context: Context) -> str:
    school = context.get("school")
    zone = getattr(school, "timezone", None)
    if not isinstance(zone, str):
        raise TemplateRuntimeError("date formatting needs `school` (with a `timezone`) in the template context")
    return zone


def _date_globals(language: str) -> dict[str, Callable[..., str]]:
    # The templates call format_time_range(start, end) without naming a zone or a language: the zone is always
    # the school's (from the context), the language is the environment's.

    @pass_context
    def format_date(context: Context, value: datetime) -> str:
        return formatting.format_date(value, _school_zone(context), language)

    @pass_context
    def format_time(context: Context, value: datetime) -> str:
        return formatting.format_time(value, _school_zone(context), language)

    @pass_context
    def format_datetime(context: Context, value: datetime) -> str:
        return formatting.format_datetime(value, _school_zone(context), language)

    @pass_context
    def format_time_range(context: Context, start: datetime, end: datetime) -> str:
        return formatting.format_time_range(start, end, _school_zone(context), language)

    return {
        "format_date": format_date,
        "format_time": format_time,
        "format_datetime": format_datetime,
        "format_time_range": format_time_range,
    }


def shorten(text: str | None, width: int) -> str:
    """Free text on one line, cut at a word boundary to at most `width` characters, ending in "..." if cut.

    For SMS, where a long agenda would cost segments; the e-mail carries the whole text.
    """
    if not text:
        return ""
    return textwrap.shorten(text, width=width, placeholder="...")


@cache
def environment_for(language: str) -> SandboxedEnvironment:
    """The environment for one language (a tag that has a catalog), created on first use and kept.

    Autoescaping is on for `.html` templates only; text and SMS templates are plain text and must not turn
    `&` into `&amp;`. Undefined names raise instead of printing nothing, so a missing field fails the render
    loudly rather than sending a parent a sentence with a hole in it.
    """
    if canonical_tag(language) not in available_languages():
        raise LookupError(f"no catalog for language {language!r}")
    environment = ImmutableSandboxedEnvironment(
        loader=TemplateLoader(TEMPLATE_PACKAGE, TEMPLATE_DIRECTORY),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        extensions=["jinja2.ext.i18n"],
        # Templates ship inside the package and do not change while a service runs; not checking their
        # modification time saves a stat() per render.
        auto_reload=False,
        cache_size=-1,
    )
    # Must match `trimmed = true` in shared/babel.cfg, or extracted msgids would differ from the runtime ones.
    environment.policies["ext.i18n.trimmed"] = True
    # install_gettext_translations is added to the environment by the i18n extension, so type checkers
    # cannot see it.
    cast(Any, environment).install_gettext_translations(translations_for(language), newstyle=True)
    environment.globals.update(_date_globals(language))
    environment.filters["paragraphs"] = formatting.paragraphs
    environment.filters["shorten"] = shorten
    logger.debug("template environment ready for language %s", language)
    return environment
