"""Stand-ins for a guardian's own values while a notification is rendered once for many guardians.

A `Slot` goes into the template context where a guardian's name or answer link would. Wherever the template
prints it, it leaves a marker that says which value it stands for and in which form it was printed: as plain
text, HTML-escaped, or isolated for bidi (`isolate` filter) in text or in HTML. Filling a marker in later with
the same transformation applied to the real value gives exactly what the template would have printed.

A marker is made of private-use characters around a random key drawn once per process, so no text a person
types (a title, an agenda) can pass for one.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from typing import Final

from markupsafe import Markup

_OPEN: Final = "\ue0f0"
_CLOSE: Final = "\ue0f1"
_KEY: Final = secrets.token_hex(6)
MARKER_KEY: Final = _OPEN + _KEY
"""Every marker starts with this; a filled-in text that still holds it was not filled in completely."""


class SlotForm(StrEnum):
    """How the template printed a slot; each form is filled in by the same transformation of the real value."""

    TEXT = "text"
    """`{{ value }}` or `~` in a text template."""
    HTML = "html"
    """`{{ value }}` in an autoescaped (HTML) template: escaped."""
    ISOLATED_TEXT = "isolated_text"
    """`value|isolate` in text: between FSI and PDI when it runs against the language's direction."""
    ISOLATED_HTML = "isolated_html"
    """`value|isolate` in HTML: escaped inside `<bdi>`."""


def marker(field: str, form: SlotForm) -> str:
    """The text a slot for `field` leaves where it is printed in `form`."""
    return f"{MARKER_KEY}:{field}:{form.value}{_CLOSE}"


class Slot:
    """Where a guardian's own value (`field`: "name", "answer_url") goes; see the module docstring.

    Deliberately not a `str`: a template that measured, cut or changed the case of it would get the marker's
    length or letters, so anything but printing it and `isolate` fails the render instead.
    """

    __slots__ = ("field",)

    def __init__(self, field: str) -> None:
        self.field = field

    def __str__(self) -> str:
        return marker(self.field, SlotForm.TEXT)

    def __html__(self) -> str:
        # markupsafe's escape() asks for this, so `{{ slot }}` in an autoescaped template leaves the HTML form.
        return marker(self.field, SlotForm.HTML)

    def __bool__(self) -> bool:
        # `{% if answer_url %}`: a slot stands for a value that is there.
        return True

    def isolated(self, *, html: bool) -> str:
        """What the `isolate` filter leaves for this slot, in HTML or in text."""
        if html:
            # The marker is ours (private-use characters, hex, a field name): nothing in it to escape.
            return Markup(marker(self.field, SlotForm.ISOLATED_HTML))  # noqa: S704
        return marker(self.field, SlotForm.ISOLATED_TEXT)
