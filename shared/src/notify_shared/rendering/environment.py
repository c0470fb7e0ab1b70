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
import re
import textwrap
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
    select_autoescape,
)
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from notify_shared.rendering import formatting
from notify_shared.rendering.digest_context import lessons_in_order
from notify_shared.rendering.languages import (
    CATALOG_DOMAIN,
    available_languages,
    canonical_tag,
    locale_directory,
)
from notify_shared.rendering.markdown import markdown_to_html, markdown_to_text
from notify_shared.rendering.sms import gsm7_friendly, sms_segments

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


# A school day as notices and digests name it: the weekday and the date, no year ("fredag 4. desember"). The
# notices are about today and the digests about this week, so the year would only lengthen an SMS.
_DAY_PATTERNS: Final[dict[str, str]] = {"nb": "EEEE d. MMMM", "nn": "EEEE d. MMMM", "en": "EEEE d MMMM"}
# Babel's plain `en` is American ("November 30 – December 4"); families in Norway read day before month.
_INTERVAL_LOCALES: Final[dict[str, str]] = {"en": "en_GB"}


def day_text(value: date, language: str) -> str:
    """A school day without the year, e.g. nb "fredag 4. desember", en "Friday 4 December"."""
    primary = canonical_tag(language).split("-", 1)[0]
    locale = formatting.babel_locale(language)
    if primary in _DAY_PATTERNS:
        return babel_dates.format_date(value, _DAY_PATTERNS[primary], locale=locale)
    return babel_dates.format_skeleton("MMMMEEEEd", value, locale=locale)


def period_text(start: date, end: date, language: str) -> str:
    """The days a digest covers: one day as `day_text`, several as nb "30. november–4. desember"."""
    if start == end:
        return day_text(start, language)
    primary = canonical_tag(language).split("-", 1)[0]
    locale = _INTERVAL_LOCALES.get(primary) or formatting.babel_locale(language)
    return babel_dates.format_interval(start, end, "MMMMd", locale=locale)


def measured_segments(text: str) -> int:
    """The SMS segments `text` will be billed as, after the renderer makes its punctuation GSM-7 friendly."""
    return sms_segments(gsm7_friendly(text))


_WORD_END = re.compile(r"\s")
_DANGLING = " \t\n,;:-–—(/"
ELLIPSIS: Final = "…"
_SINGLE_GSM7_CHARACTERS: Final = 160  # the most characters any one segment holds


def _longest_fitting(text: str, fits: Callable[[str], bool], limit: int) -> str | None:
    # The longest start of `text`, cut after a whole word and ending in "…", for which fits() holds; cut
    # inside a word only when not even the first word fits. None when not even "…" alone fits. No SMS holds
    # more than `limit` characters, so a 20,000-character message is searched only as far as that.
    text = text[: limit + 1]

    def cut(end: int) -> str:
        return text[:end].rstrip(_DANGLING) + ELLIPSIS

    for ends in ([match.start() for match in _WORD_END.finditer(text)], list(range(1, len(text)))):
        candidates = [end for end in ends if text[:end].strip(_DANGLING)]
        low, high, best = 0, len(candidates) - 1, None
        while low <= high:  # fits() only gets harder as the text grows, so a binary search finds the longest
            middle = (low + high) // 2
            if fits(cut(candidates[middle])):
                best, low = candidates[middle], middle + 1
            else:
                high = middle - 1
        if best is not None:
            return cut(best)
    return ELLIPSIS if fits(ELLIPSIS) else None


def fit_sms(head: str, body: str, tail: str, cut_note: str = "", max_segments: int = 3) -> str:
    """An SMS of `head`, `body` and `tail`, one per line, in at most `max_segments` billed segments.

    When the whole does not fit, the body is cut after a whole word and ends in "…", and `cut_note` (e.g.
    "the whole message came by e-mail") goes before the tail. Blank lines in the body are closed up: in an
    SMS they cost characters and help little. The head and the tail (what it is about, who sent it) are kept
    whole unless they alone are too long; then the head is cut too.
    """
    head, tail, cut_note = str(head).strip(), str(tail).strip(), str(cut_note).strip()
    body = re.sub(r"\n\s*\n+", "\n", str(body).strip())

    def join(*parts: str) -> str:
        return "\n".join(part for part in parts if part)

    def fits(text: str) -> bool:
        return measured_segments(text) <= max_segments

    limit = _SINGLE_GSM7_CHARACTERS * max_segments
    whole = join(head, body, tail)
    # Measuring a 20,000-character message is the costly part; far beyond what any SMS holds, skip it.
    # (gsm7_friendly only drops invisible characters, so four times the limit cannot shrink to fit.)
    if len(whole) <= 4 * limit and fits(whole):
        return whole
    cut_body = _longest_fitting(body, lambda candidate: fits(join(head, candidate, cut_note, tail)), limit)
    if cut_body is not None and cut_body != ELLIPSIS:
        return join(head, cut_body, cut_note, tail)
    cut_head = _longest_fitting(head, lambda candidate: fits(join(candidate, cut_note, tail)), limit)
    if cut_head is not None:
        return join(cut_head, cut_note, tail)
    return _longest_fitting(join(head, tail), fits, limit) or ELLIPSIS


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
    environment.filters["markdown"] = markdown_to_html
    environment.filters["markdown_text"] = markdown_to_text
    environment.filters["lessons_in_order"] = lessons_in_order
    environment.globals["fit_sms"] = fit_sms
    environment.globals["sms_segments"] = measured_segments
    logger.debug("template environment ready for language %s", language)
    return environment
