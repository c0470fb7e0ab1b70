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
from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import cache
from typing import Any, Final, cast
from zoneinfo import ZoneInfo

from babel import dates as babel_dates
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import (
    Environment,
    PackageLoader,
    StrictUndefined,
    TemplateRuntimeError,
    pass_context,
    pass_eval_context,
    select_autoescape,
)
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from notify_shared.rendering import bidi, formatting
from notify_shared.rendering.digest_context import lessons_in_order
from notify_shared.rendering.languages import (
    CATALOG_DOMAIN,
    Direction,
    available_languages,
    canonical_tag,
    direction_of,
    locale_directory,
)
from notify_shared.rendering.markdown import markdown_to_html, markdown_to_text
from notify_shared.rendering.slots import Slot

# fit_sms and measured_segments were defined here before they moved to sms_fitting; still importable from here.
from notify_shared.rendering.sms_fitting import compose_sms, fit_sms, measured_segments, shorten, sms_line

__all__ = [
    "TEMPLATE_DIRECTORY",
    "TEMPLATE_PACKAGE",
    "TemplateLoader",
    "day_text",
    "environment_for",
    "fit_sms",
    "measured_segments",
    "period_text",
    "translations_for",
]

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


def _local_date(value: datetime, zone: str) -> date:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("expected an aware datetime (with a UTC offset)")
    return value.astimezone(ZoneInfo(zone)).date()


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

    @pass_context
    def format_day(context: Context, value: date | datetime) -> str:
        if isinstance(value, datetime):
            value = _local_date(value, _school_zone(context))
        return day_text(value, language)

    @pass_context
    def format_day_time(context: Context, value: datetime) -> str:
        zone = _school_zone(context)
        return formatting.patterns_for(language).at.format(
            date=day_text(_local_date(value, zone), language),
            time=formatting.format_time(value, zone, language),
        )

    def format_period(start: date, end: date) -> str:
        return period_text(start, end, language)

    return {
        "format_date": format_date,
        "format_time": format_time,
        "format_datetime": format_datetime,
        "format_time_range": format_time_range,
        "format_day": format_day,
        "format_day_time": format_day_time,
        "format_period": format_period,
    }


# Babel's plain `en` is American ("November 30 – December 4"); families in Norway read day before month.
_INTERVAL_LOCALES: Final[dict[str, str]] = {"en": "en_GB"}


def day_text(value: date, language: str) -> str:
    """A school day without the year, e.g. nb "fredag 4. desember", en "Friday 4 December"."""
    return formatting.format_day(value, language)


def period_text(start: date, end: date, language: str) -> str:
    """The days a digest covers: one day as `day_text`, several as nb "30. november–4. desember"."""
    if start == end:
        return day_text(start, language)
    end_pattern = formatting.patterns_for(language).period_end
    if end_pattern is not None:
        babel_locale = formatting.babel_locale(language)
        return " – ".join(babel_dates.format_date(day, end_pattern, locale=babel_locale) for day in (start, end))
    primary = canonical_tag(language).split("-", 1)[0]
    locale = _INTERVAL_LOCALES.get(primary) or formatting.babel_locale(language)
    return babel_dates.format_interval(start, end, "MMMMd", locale=locale)


def _isolate_filter(direction: Direction) -> Callable[[EvalContext, object], str]:
    # One filter for both twins of a template (see TemplateLoader): whether it is writing HTML is known only
    # when it runs (the eval context's autoescape), the language's direction when the environment is built.
    @pass_eval_context
    def isolate(eval_context: EvalContext, value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, Slot):
            # A guardian's value in a rendering shared by many guardians: isolated when it is filled in.
            return value.isolated(html=eval_context.autoescape)
        if eval_context.autoescape:
            return bidi.isolate_html(value)
        return bidi.isolate_text(str(value), direction)

    return isolate


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
    environment.filters["markdown"] = markdown_to_html
    environment.filters["markdown_text"] = markdown_to_text
    environment.filters["lessons_in_order"] = lessons_in_order
    environment.filters["isolate"] = _isolate_filter(direction_of(language))
    environment.globals["fit_sms"] = fit_sms
    environment.globals["compose_sms"] = compose_sms
    environment.globals["sms_line"] = sms_line
    environment.globals["sms_segments"] = measured_segments
    logger.debug("template environment ready for language %s", language)
    return environment
