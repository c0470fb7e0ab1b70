"""Render a meeting notification once for all the guardians it goes to, then fill in each guardian's own parts.

An invitation, update, cancellation or reminder differs between the guardians of one meeting only in a few
places: the name in the greeting, the personal answer link, and a few facts that choose between sentences
(whether the guardian also gets an email, whether they said they are coming). `RenderOnce` renders the
templates once per meeting, template, language and those facts, with a `Slot` where the name and the link go,
and fills each guardian's values into that rendering the way the template would have printed them: escaped in
HTML, isolated for bidi where the template isolates, on one line in the subject. The SMS is the one part whose
shape depends on the values (a long name can push the greeting out to keep the SMS within its segments), so
its lines are kept from the shared rendering and fitted per guardian with the values filled in.

The result is meant to be exactly what `render_notification` gives for that guardian alone; the rendering tests
compare the two for every template, language and a set of hostile names. Whatever this module cannot share
(another template, a context it does not know) is rendered alone, as before.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from markupsafe import escape
from pydantic import BaseModel

from notify_shared.contract import Channel, ContactProblem, Recipient, Rsvp
from notify_shared.rendering import bidi
from notify_shared.rendering.languages import Direction, choose_language, direction_of
from notify_shared.rendering.renderer import (
    RenderedNotification,
    finish_rendering,
    render_notification,
    render_parts,
    template_names,
)
from notify_shared.rendering.slots import MARKER_KEY, Slot, SlotForm, marker
from notify_shared.rendering.sms_fitting import SmsLine, compose_sms, sms_line

logger = logging.getLogger(__name__)

SHARED_TEMPLATES: Final = frozenset(
    {"meeting_invitation", "meeting_update", "meeting_cancellation", "meeting_reminder"}
)
"""The templates whose per-guardian parts are known: the guardian's name, facts and answer link, nothing else."""
PERSONAL_CONTEXT: Final = ("guardian", "answer_url")
"""Context names that differ between the guardians of one meeting."""

_MARKER = re.compile(re.escape(MARKER_KEY) + "[^\ue0f1]*\ue0f1")
_SMS_FIELD = "composed_sms_{}"


@dataclass(frozen=True, slots=True)
class _GuardianStandIn:
    """What the meeting templates may read of a guardian: the name as a slot, and the facts the skeleton is for."""

    name: Slot
    channels: tuple[Channel, ...]
    rsvp: Rsvp | None
    problems: tuple[tuple[Channel, ContactProblem | None], ...]

    def contact_problem(self, channel: Channel) -> ContactProblem | None:
        return dict(self.problems).get(Channel(channel))


def _facts(guardian: Recipient) -> tuple[Hashable, ...]:
    # Everything of a guardian a meeting template may look at besides the name; guardians alike in these share.
    problems = tuple((channel, guardian.contact_problem(channel)) for channel in Channel)
    return (guardian.channels, guardian.rsvp, problems)


@dataclass(frozen=True, slots=True)
class _ComposeCall:
    lines: tuple[SmsLine | None, ...]
    budgets: tuple[int, int | None, tuple[int, ...]]


class _DeferredCompose:
    """Stands in for `compose_sms` in a shared rendering: keeps the lines and leaves a marker for the result."""

    def __init__(self) -> None:
        self.calls: list[_ComposeCall] = []

    def __call__(
        self, lines: Iterable[SmsLine | None], segments: int, max_segments: int | None = None, *larger: int
    ) -> str:
        self.calls.append(_ComposeCall(tuple(lines), (segments, max_segments, larger)))
        return marker(_SMS_FIELD.format(len(self.calls) - 1), SlotForm.TEXT)


@dataclass(frozen=True, slots=True)
class _Skeleton:
    template: str
    language: str
    direction: Direction
    parts: tuple[str, str, str, str]
    composed: tuple[_ComposeCall, ...]
    pinned: tuple[object, ...]
    """The context values the skeleton was keyed by identity on, kept alive so their ids are not reused."""

    def fill(self, personal: Mapping[str, str]) -> RenderedNotification:
        forms = {
            marker(field, form): _printed(value, form, self.direction)
            for field, value in personal.items()
            for form in SlotForm
        }

        def filled(text: str) -> str:
            return _MARKER.sub(lambda found: forms[found.group()], text)

        for index, call in enumerate(self.composed):
            segments, max_segments, larger = call.budgets
            lines = [
                None
                if line is None
                else sms_line(filled(line.text), line.drop, filled(line.instead), line.cut, filled(line.label))
                for line in call.lines
            ]
            forms[marker(_SMS_FIELD.format(index), SlotForm.TEXT)] = compose_sms(lines, segments, max_segments, *larger)
        subject, text, html, sms = (filled(part) for part in self.parts)
        return finish_rendering(self.template, self.language, (subject, text, html, sms))


def _printed(value: str, form: SlotForm, direction: Direction) -> str:
    # The same transformations the templates apply: printing, autoescaping, and the `isolate` filter's two forms.
    match form:
        case SlotForm.TEXT:
            return value
        case SlotForm.HTML:
            return str(escape(value))
        case SlotForm.ISOLATED_TEXT:
            return bidi.isolate_text(value, direction)
        case SlotForm.ISOLATED_HTML:
            return str(bidi.isolate_html(value))


_BY_IDENTITY: Final = object()


def _value_key(value: object) -> tuple[Hashable, bool]:
    """A key for a shared context value, and whether it is by identity (then the value must be kept alive).

    Equal contracts render the same, so a meeting parsed again for each reminder still shares its skeleton: a
    model is keyed by its JSON, which keeps a time's UTC offset (two instants that compare equal in different
    offsets are not taken for one). Plain immutable values are keys themselves; anything else is keyed by identity.
    """
    if value is None or isinstance(value, str | bool | int):
        return (type(value), value), False
    if isinstance(value, BaseModel):
        return (type(value), value.model_dump_json()), False
    if isinstance(value, frozenset) and all(isinstance(item, str) for item in value):
        return (frozenset, value), False
    return (_BY_IDENTITY, id(value)), True


class RenderOnce:
    """`render_notification` for many guardians of one meeting at the cost of about one rendering.

    Call it like `render_notification`. Renderings that can be shared are kept, the most recently used
    `capacity` of them; each is a few kilobytes of text.
    """

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._skeletons: OrderedDict[Hashable, _Skeleton] = OrderedDict()
        self._render_alone = render_notification
        self.shared_renderings = 0
        """How many shared renderings were made: one per meeting, template, language and guardian facts."""

    def __call__(
        self, template: str, language_wanted: str, school_standard: str, context: Mapping[str, object]
    ) -> RenderedNotification:
        guardian = context.get("guardian")
        answer_url = context.get("answer_url")
        if (
            template not in SHARED_TEMPLATES
            or template not in template_names()
            or not isinstance(guardian, Recipient)
            or not (answer_url is None or isinstance(answer_url, str))
        ):
            return self._render_alone(template, language_wanted, school_standard, context)
        personal = {"name": guardian.name}
        if answer_url:
            personal["answer_url"] = answer_url
        try:
            skeleton = self._skeleton(template, choose_language(language_wanted, school_standard), context, guardian)
            rendered = skeleton.fill(personal)
        except Exception:
            # Something the shared rendering does not cover (a template reading more of the guardian than it
            # knows): render this one alone, which also raises the template's own error if there is one.
            logger.debug("%s cannot be rendered once for all guardians; rendering it alone", template, exc_info=True)
            return self._render_alone(template, language_wanted, school_standard, context)
        if any(MARKER_KEY in part for part in (rendered.subject, rendered.text, rendered.html, rendered.sms)):
            logger.warning("%s left a guardian's value unfilled in its shared rendering; rendering it alone", template)
            return self._render_alone(template, language_wanted, school_standard, context)
        return rendered

    def _skeleton(self, template: str, language: str, context: Mapping[str, object], guardian: Recipient) -> _Skeleton:
        shared = sorted(
            ((name, value) for name, value in context.items() if name not in PERSONAL_CONTEXT), key=lambda item: item[0]
        )
        keyed = [(name, *_value_key(value)) for name, value in shared]
        answer_url = context.get("answer_url")
        link_state = "absent" if "answer_url" not in context else ("slot" if answer_url else answer_url)
        key = (
            template,
            language,
            tuple((name, value_key) for name, value_key, _ in keyed),
            _facts(guardian),
            link_state,
        )
        skeleton = self._skeletons.get(key)
        if skeleton is not None:
            self._skeletons.move_to_end(key)
            return skeleton
        compose = _DeferredCompose()
        stand_in = _GuardianStandIn(
            name=Slot("name"),
            channels=guardian.channels,
            rsvp=guardian.rsvp,
            problems=tuple((channel, guardian.contact_problem(channel)) for channel in Channel),
        )
        values: dict[str, object] = dict(shared) | {"guardian": stand_in, "compose_sms": compose}
        if link_state == "slot":
            values["answer_url"] = Slot("answer_url")
        elif "answer_url" in context:
            values["answer_url"] = answer_url
        skeleton = _Skeleton(
            template=template,
            language=language,
            direction=direction_of(language),
            parts=render_parts(template, language, values),
            composed=tuple(compose.calls),
            pinned=tuple(value for (_, value), (_, _, by_identity) in zip(shared, keyed, strict=True) if by_identity),
        )
        self.shared_renderings += 1
        self._skeletons[key] = skeleton
        if len(self._skeletons) > self._capacity:
            self._skeletons.popitem(last=False)
        return skeleton
