"""The order in which a notice's SMS lines give way holds in every language, whatever letters each line needs.

Each composed template states the order its optional lines give way (`drop=1` first). A line that needs UCS-2
(a Polish "ś", a Latvian "ā", any Arabic or Cyrillic letter) used to give way before the lines the template
lets go first, because it cost the whole SMS its GSM-7 budget. Here every composed SMS is rendered in every
language with an agenda, a note and a list of lessons too long to fit, and the lines that reach the parent are
checked against the stated order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pytest

from notify_shared.contract.absences import Lesson
from notify_shared.contract.meetings import Meeting
from notify_shared.rendering import available_languages, environment, render_notification, renderer
from notify_shared.rendering.bidi import without_isolates
from notify_shared.rendering.previews import sample_context
from notify_shared.rendering.sms_fitting import ELLIPSIS, SmsLine, compose_sms, needed_encoding

LANGUAGES = sorted(available_languages())
LONG_AGENDA = (
    "Leirskolen i mai: kostnader, pakkeliste og hvem som kan være med som voksne. "
    "Ta gjerne med spørsmål om overgangen til ungdomsskolen og om leksehjelpen. "
    "Vi avslutter med kaffe og en prat med kontaktlæreren."
)
LONG_NOTE = (
    "Kontaktlæreren er syk denne uken. Vi sender en ny invitasjon så snart vi har en ny dato, "
    "trolig i januar. Beklager ulempen."
)
LONG_LESSONS = ("Matematikk", "Norsk", "Kroppsøving", "Naturfag", "Engelsk", "Samfunnsfag")

LETTERS_OUTSIDE_GSM7 = frozenset({"pl", "lt", "lv", "uk", "ar", "ur", "prs", "ps", "ti", "kmr", "se", "tr", "vi"})
"""The languages whose own SMS lines need UCS-2; the test checks this list against the catalogs."""


@dataclass(frozen=True)
class Composed:
    lines: tuple[SmsLine, ...]
    sms: str


@pytest.fixture
def composed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Composed]]:
    """Every `compose_sms` call the templates make, with the lines they passed and the SMS they got back."""
    calls: list[Composed] = []

    def recording(lines: Iterable[SmsLine | None], segments: int, max_segments: int | None = None, *larger: int) -> str:
        present = tuple(line for line in lines if isinstance(line, SmsLine) and line.text)
        sms = compose_sms(present, segments, max_segments, *larger)
        calls.append(Composed(present, sms))
        return sms

    monkeypatch.setattr(environment, "compose_sms", recording)
    environment.environment_for.cache_clear()
    renderer._compiled.cache_clear()
    yield calls
    monkeypatch.undo()
    environment.environment_for.cache_clear()
    renderer._compiled.cache_clear()


def _crowded_context(template: str, language: str) -> dict[str, object]:
    context = sample_context(template, language)
    meeting = context.get("meeting")
    if isinstance(meeting, Meeting):
        context["meeting"] = meeting.model_copy(update={"agenda": LONG_AGENDA})
    if template == "meeting_cancellation":
        context["cancellation_note"] = LONG_NOTE
    if template == "absence_notice":
        context["lessons"] = tuple(
            Lesson(period=period, subject=subject) for period, subject in enumerate(LONG_LESSONS, start=1)
        )
    return context


def _state(line: SmsLine, sent_lines: list[str]) -> str:
    """How `line` reached the parent: "whole", "cut" (shortened, ending in "…") or "gone" (or its stand-in)."""
    if line.whole in sent_lines:
        return "whole"
    if line.cut:
        start = f"{line.label} " if line.label else ""
        for sent in sent_lines:
            if sent.startswith(start) and without_isolates(sent).endswith(ELLIPSIS):
                return "cut"
    return "gone"


def _order_broken(call: Composed) -> list[str]:
    sent_lines = call.sms.split("\n")
    optional = [(line.drop, line) for line in call.lines if line.drop is not None]
    return [
        f"kept {earlier.whole!r} (drop={earlier_step}) but not {later.whole!r} (drop={later_step})"
        for earlier_step, earlier in optional
        for later_step, later in optional
        if earlier_step < later_step and _state(earlier, sent_lines) != "gone" and _state(later, sent_lines) != "whole"
    ]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    ("template", "moved"),
    [
        ("meeting_invitation", False),
        ("meeting_reminder", False),
        ("meeting_reminder", True),
        ("meeting_update", False),
        ("meeting_cancellation", False),
        ("absence_notice", False),
    ],
)
def test_optional_lines_give_way_in_the_order_the_template_states(
    composed: list[Composed], template: str, moved: bool, language: str
) -> None:
    context = _crowded_context(template, language) | ({"moved": True} if moved else {})

    rendered = render_notification(template, language, "nb", context)

    (call,) = composed
    assert _order_broken(call) == []
    # An invitation or update with an answer link may take a fourth segment rather than lose the link.
    assert rendered.sms_segments <= (4 if context.get("answer_url") else 3)


@pytest.mark.parametrize("language", sorted(LETTERS_OUTSIDE_GSM7))
def test_the_languages_checked_for_order_really_need_ucs2(composed: list[Composed], language: str) -> None:
    render_notification("meeting_invitation", language, "nb", _crowded_context("meeting_invitation", language))

    (call,) = composed
    own_lines = [line.whole for line in call.lines if not line.cut]
    assert needed_encoding("\n".join(own_lines)) == "UCS-2"


def test_every_language_with_letters_outside_gsm7_is_in_the_list(composed: list[Composed]) -> None:
    for language in LANGUAGES:
        render_notification("meeting_invitation", language, "nb", _crowded_context("meeting_invitation", language))
    needing_ucs2 = {
        language
        for language, call in zip(LANGUAGES, composed, strict=True)
        if needed_encoding("\n".join(line.whole for line in call.lines if not line.cut)) == "UCS-2"
    }

    assert needing_ucs2 == LETTERS_OUTSIDE_GSM7


def test_a_polish_reminder_keeps_asking_to_hear_from_a_parent_who_cannot_come(composed: list[Composed]) -> None:
    # The reviewer's case: the request (given way last) went, the Norwegian agenda (given way first) stayed.
    context = _crowded_context("meeting_reminder", "pl")
    meeting = context["meeting"]
    assert isinstance(meeting, Meeting)
    context["meeting"] = meeting.model_copy(update={"location": "Rom 204", "organizer_name": None})

    rendered = render_notification("meeting_reminder", "pl", "nb", context)

    please_tell_us = environment.translations_for("pl").gettext("If you cannot come, please let the school know.")
    assert rendered.sms.split("\n")[-2] == please_tell_us
    assert "Leirskolen" not in rendered.sms
    assert rendered.sms_encoding == "UCS-2"
    assert rendered.sms_segments == 3


def test_a_norwegian_invitation_stays_in_two_segments(composed: list[Composed]) -> None:
    rendered = render_notification("meeting_invitation", "nb", "nb", _crowded_context("meeting_invitation", "nb"))

    assert rendered.sms_encoding == "GSM-7"
    assert rendered.sms_segments == 2
    assert rendered.sms.startswith("Hei Kari Nordmann,\n")
    assert "Du får også en e-post med alle detaljer." in rendered.sms
