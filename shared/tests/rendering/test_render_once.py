"""Rendering a meeting's notification once for all its guardians gives each guardian exactly their own message.

`RenderOnce` renders a template once per meeting, language and guardian facts and fills each guardian's name
and answer link in; these tests hold every part (subject, text, HTML, SMS and its measurement) of every
guardian's message to what `render_notification` gives for that guardian alone, in every language with a
catalog, for names built to break the filling in.
"""

from __future__ import annotations

from dataclasses import astuple
from datetime import UTC
from typing import Any

import pytest

from notify_shared.contract import Channel, Recipient, Rsvp
from notify_shared.rendering import UnknownTemplateError, available_languages, render_notification
from notify_shared.rendering.render_once import SHARED_TEMPLATES, RenderOnce
from notify_shared.rendering.slots import MARKER_KEY

from .render_factories import context, guardian, meeting

LANGUAGES = sorted(available_languages())
TEMPLATES = sorted(SHARED_TEMPLATES)
ANSWER_URL = "https://svar.skole.example/r/aXk3m9Qw2Lr8Tz0Vb5Nc7Hd1Fg4Js6Pq"

HOSTILE_NAMES = (
    "Kari Nordmann",
    "<script>alert('x')</script> & \"Ola\" <b>Hansen</b>",
    "عائشة خان",
    "Ali \u200fحسن\u200e \u202eesrever\u202c",
    "Kari\x00\x07\x1b[31m\r\n\tNordmann\x85\u2028",
    "{{ 7*7 }} {% raw %} %s %(name)s {0} $name \\n",
    "Ыыы Żółć Đặng Thị Hồng ḥ ☎ 😀 𝐀",
    "Ola " * 75,
    "Anne-Marie Bakke-Øvergård " * 80,
    f"{MARKER_KEY}:name:text\ue0f1 \ue0f0fake:answer_url:html\ue0f1",
    "   ",
    "",
)
"""Markup, right-to-left letters and marks, control characters, template and format syntax, letters outside GSM-7,
names far longer than any SMS, text that looks like the renderer's own markers, and nothing at all. The names
go in as given, past the contract's validation, so the renderer is tested on more than the contract lets in."""


def _guardian(name: str, language: str, **facts: Any) -> Recipient:
    return guardian(language=language, **facts).model_copy(update={"name": name})


def _contexts(template: str, language: str, *, link: bool, **facts: Any) -> list[dict[str, object]]:
    # One meeting (the same school, meeting and changes objects), one context per guardian, as the services plan.
    shared = context(template)
    contexts = []
    for name in HOSTILE_NAMES:
        values = shared | {"guardian": _guardian(name, language, **facts)}
        if link and template in ("meeting_invitation", "meeting_update"):
            values["answer_url"] = ANSWER_URL
        contexts.append(values)
    return contexts


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_guardians_message_is_what_rendering_it_alone_gives(template: str, language: str) -> None:
    render_once = RenderOnce()
    variants: list[dict[str, Any]] = [
        {"link": True},
        {"link": False},
        {"link": True, "channels": (Channel.SMS,)},
        {"link": True, "rsvp": Rsvp.ACCEPTED, "email": None},
    ]
    for variant in variants:
        for values in _contexts(template, language, **variant):
            alone = render_notification(template, language, "nb", values)
            shared = render_once(template, language, "nb", values)
            assert astuple(shared) == astuple(alone), (variant, values["guardian"])


def test_a_meetings_guardians_share_one_rendering_per_language_and_facts() -> None:
    render_once = RenderOnce()
    shared = context("meeting_invitation")
    for number in range(50):
        language = ("nb", "ar")[number % 2]
        values = shared | {"guardian": _guardian(f"Guardian {number}", language), "answer_url": ANSWER_URL}
        render_once("meeting_invitation", language, "nb", values)

    assert render_once.shared_renderings == 2


def test_a_meeting_read_again_for_each_reminder_still_shares_its_rendering() -> None:
    # The reminders service reads each reminder's meeting from its own row: equal contracts, different objects.
    render_once = RenderOnce()
    for number in range(5):
        values = context("meeting_reminder", moved=False) | {"guardian": _guardian(f"Guardian {number}", "nb")}
        render_once("meeting_reminder", "nb", "nb", values)

    assert render_once.shared_renderings == 1


def test_a_meeting_at_the_same_instant_in_another_offset_is_rendered_on_its_own() -> None:
    # 18:00 in Oslo and 17:00 UTC compare equal, but a template may print either; they must not share a rendering.
    render_once = RenderOnce()
    in_oslo = meeting()
    in_utc = meeting(starts_at=in_oslo.starts_at.astimezone(UTC), ends_at=in_oslo.ends_at.astimezone(UTC))
    assert in_utc == in_oslo
    render_once("meeting_invitation", "nb", "nb", context("meeting_invitation", meeting=in_oslo))
    render_once("meeting_invitation", "nb", "nb", context("meeting_invitation", meeting=in_utc))

    assert render_once.shared_renderings == 2


def test_a_template_that_does_not_exist_fails_as_it_does_when_rendered_alone() -> None:
    with pytest.raises(UnknownTemplateError):
        RenderOnce()("meeting_invitatoin", "nb", "nb", context("meeting_invitation"))
