"""From a template name, a language and a context to the subject, e-mail bodies and SMS a guardian gets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Final

from jinja2 import Template

from notify_shared.rendering.environment import TEMPLATE_DIRECTORY, TEMPLATE_PACKAGE, environment_for
from notify_shared.rendering.languages import Direction, choose_language, direction_of
from notify_shared.rendering.sms import SmsEncoding, gsm7_friendly, sms_encoding, sms_segments

OPTIONAL_CONTEXT: Final[Mapping[str, object]] = {
    "changes": frozenset(),
    "previous": None,
    "cancellation_note": None,
    "moved": False,
}
"""What the templates see when the caller leaves these out: no changes, no earlier state, no note, not moved."""

_PARTS: Final = ("subject.txt", "body.txt", "body.html", "sms.txt")
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)
_EXTRA_BLANK_LINES = re.compile(r"\n{3,}")


class UnknownTemplateError(LookupError):
    """There is no notification template with that name."""


@dataclass(frozen=True, slots=True)
class RenderedNotification:
    """One notification, rendered for one guardian in one language: everything each channel needs."""

    template: str
    language: str
    """The language actually rendered, after fallback (e.g. `nn` for a guardian who wanted `pl`)."""
    direction: Direction
    """`ltr` or `rtl`, for the e-mail client and anything else that lays the text out."""
    subject: str
    """E-mail subject, always one line."""
    text: str
    """The plain-text e-mail body."""
    html: str
    """The HTML e-mail body, a full document."""
    sms: str
    """The SMS text, with typographic punctuation made plain when that keeps it in GSM-7."""
    sms_encoding: SmsEncoding
    sms_segments: int


@cache
def template_names() -> frozenset[str]:
    """The notification templates that exist: every directory under `templates/` not starting with `_`."""
    root = files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_DIRECTORY)
    return frozenset(entry.name for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith("_"))


@cache
def _compiled(template: str, language: str) -> tuple[Template, Template, Template, Template]:
    # Jinja caches compiled templates too, but looking them up by name still costs a loader round-trip;
    # holding the four parts per (template, language) makes a render just four render() calls.
    environment = environment_for(language)
    subject, text, html, sms = (environment.get_template(f"{template}/{part}") for part in _PARTS)
    return subject, text, html, sms


def _tidy(text: str) -> str:
    # Optional lines in the templates (agenda, organizer, note) leave blank lines behind when they are absent.
    return _EXTRA_BLANK_LINES.sub("\n\n", _TRAILING_SPACE.sub("", text)).strip()


def render_notification(
    template: str, language_wanted: str, school_standard: str, context: Mapping[str, object]
) -> RenderedNotification:
    """Render every part of `template` for one guardian.

    `language_wanted` is the guardian's language tag and `school_standard` the school's written standard
    (`nb`/`nn`); the language used is the first of those with a catalog, else `nb` (see `choose_language`).
    `context` holds what the templates use: for the meeting notifications `school`, `meeting`, `guardian`,
    and, where they apply, `changes`, `previous`, `cancellation_note` and `moved` (see `OPTIONAL_CONTEXT`).
    The renderer adds `lang` and `direction`.

    Raises `UnknownTemplateError` for a name that has no template, and a Jinja error when the context lacks
    something the template needs.
    """
    if template not in template_names():
        raise UnknownTemplateError(f"no notification template named {template!r}")
    language = choose_language(language_wanted, school_standard)
    return finish_rendering(template, language, render_parts(template, language, context))


def render_parts(template: str, language: str, context: Mapping[str, object]) -> tuple[str, str, str, str]:
    """The four parts (subject, text, HTML, SMS) of `template` in `language` (a catalog's tag), as the templates
    print them, before `finish_rendering` tidies them. `context` may set names the renderer's globals also have."""
    values = {**OPTIONAL_CONTEXT, **context, "lang": language, "direction": direction_of(language)}
    subject_template, text_template, html_template, sms_template = _compiled(template, language)
    return (
        subject_template.render(values),
        text_template.render(values),
        html_template.render(values),
        sms_template.render(values),
    )


def finish_rendering(template: str, language: str, parts: tuple[str, str, str, str]) -> RenderedNotification:
    """The notification from the parts as printed: the subject on one line, blank lines closed up, the SMS
    made GSM-7 friendly and measured."""
    subject, text, html, sms_printed = parts
    sms = gsm7_friendly(_tidy(sms_printed))
    return RenderedNotification(
        template=template,
        language=language,
        direction=direction_of(language),
        subject=" ".join(subject.split()),
        text=_tidy(text) + "\n",
        html=html.strip() + "\n",
        sms=sms,
        sms_encoding=sms_encoding(sms),
        sms_segments=sms_segments(sms),
    )
