"""Rendering notifications: templates, translations, dates in the guardian's language, SMS measurement.

`render_notification` is the entry point the services use (through the delivery dispatcher); the rest is
public for tests, tools and templates that need the same formatting.
"""

from notify_shared.rendering.digest_context import DigestAbsence, DigestMessage, DigestSection, lessons_in_order
from notify_shared.rendering.formatting import (
    format_date,
    format_datetime,
    format_day,
    format_time,
    format_time_range,
    paragraphs,
)
from notify_shared.rendering.languages import (
    RIGHT_TO_LEFT,
    Direction,
    available_languages,
    catalog_language,
    choose_language,
    direction_of,
)
from notify_shared.rendering.markdown import is_safe_link, markdown_to_html, markdown_to_text
from notify_shared.rendering.renderer import (
    OPTIONAL_CONTEXT,
    RenderedNotification,
    UnknownTemplateError,
    render_notification,
    template_names,
)
from notify_shared.rendering.sms import SmsEncoding, gsm7_friendly, sms_encoding, sms_segments

__all__ = [
    "OPTIONAL_CONTEXT",
    "RIGHT_TO_LEFT",
    "DigestAbsence",
    "DigestMessage",
    "DigestSection",
    "Direction",
    "RenderedNotification",
    "SmsEncoding",
    "UnknownTemplateError",
    "available_languages",
    "catalog_language",
    "choose_language",
    "direction_of",
    "format_date",
    "format_datetime",
    "format_day",
    "format_time",
    "format_time_range",
    "gsm7_friendly",
    "is_safe_link",
    "lessons_in_order",
    "markdown_to_html",
    "markdown_to_text",
    "paragraphs",
    "render_notification",
    "sms_encoding",
    "sms_segments",
    "template_names",
]
