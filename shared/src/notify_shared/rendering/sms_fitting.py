"""Fitting an SMS into a budget of billed segments, in any language and either encoding.

A budget is a number of segments, never of characters: the same budget holds 306 characters of Norwegian
(GSM-7) and 134 of Polish or Arabic (UCS-2), so a rule like "at most 290 characters" is right for one language
and three segments over for another. Every text here is measured as it will be sent (`measured_segments`).

Two ways to fit, used by the SMS templates:

- `fit_sms(head, body, tail, …)` for a message whose body is free text of any length (a teacher's message, a
  digest): the body is cut at the end of a sentence, or else of a word, and ends in "…".
- `compose_sms(lines, segments, max_segments)` for a notice made of lines that each carry something
  (what, when, where, who sent it) and some that are nice to have (a greeting, the agenda). The optional
  lines give way in the order the template states, a free-text line is cut before it is dropped, and the
  essential lines are only cut when nothing else is left (unrealistically long titles or places).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from notify_shared.rendering.bidi import ISOLATE_INITIATORS, close_isolates, without_isolates
from notify_shared.rendering.sms import SmsEncoding, gsm7_friendly, sms_encoding, sms_segments


def measured_segments(text: str, encoding: SmsEncoding | None = None) -> int:
    """The SMS segments `text` will be billed as, after the renderer makes its punctuation GSM-7 friendly.

    With `encoding="UCS-2"`, measured as UCS-2 even if `text` alone would go as GSM-7: what it costs once
    lines that need UCS-2 are added to it.
    """
    return sms_segments(gsm7_friendly(text), encoding)


def needed_encoding(text: str) -> SmsEncoding:
    """The encoding `text` will go in, after the renderer makes its punctuation GSM-7 friendly."""
    return sms_encoding(gsm7_friendly(text))


_WORD_END = re.compile(r"\s")
# Left dangling at the end of a cut, these only look broken; an isolate opened right before the cut too.
_DANGLING = " \t\n,;:-–—(/" + ISOLATE_INITIATORS
ELLIPSIS: Final = "…"
_SINGLE_GSM7_CHARACTERS: Final = 160  # the most characters any one segment holds
# A cut line shorter than this ("Om møtet: Vi snakker…") says nothing; the line is left out instead.
_SHORTEST_USEFUL_CUT: Final = 24
# Only runs of ordinary white space are closed up in a line; no-break spaces (U+00A0, U+202F) that CLDR puts
# in dates ("2026 р.") stay, so a phone does not break the line there.
_LINE_SPACE = re.compile(r"[ \t\r\n\f\v]+")


# The end of a sentence: its mark (Latin, Arabic "؟", Urdu "۔", Ethiopic "።" and "፧"), any closing quotes or
# brackets, and the space after it. Whether a sentence really ends there is decided by what follows.
_SENTENCE_END = re.compile(r"[.!?…؟۔።፧]+[\"'»”’)\]]*\s+")
# A cut at a sentence is taken over a cut at a word when it keeps at least this share of what the word cut
# would: a whole sentence reads better than one with a stray word or two of the next, but not at any price.
_SENTENCE_SHARE: Final = 0.5


def _sentence_ends(text: str) -> list[int]:
    # Where sentences end: after ". " followed by something that can start a sentence (a capital, a letter of
    # a script without case), so "kl. 18" and "f.eks. ta med" are not taken for one.
    ends = []
    for match in _SENTENCE_END.finditer(text):
        following = text[match.end() : match.end() + 1]
        if following and not following.islower() and not following.isdigit():
            ends.append(match.end())
    return ends


def _longest_fitting(text: str, fits: Callable[[str], bool], limit: int) -> str | None:
    # The longest start of `text` for which fits() holds, ending in "…": at the end of a sentence if that
    # keeps most of what a cut at a word would, else after a whole word; inside a word only when not even
    # the first word fits. None when not even "…" alone fits. No SMS holds more than `limit` characters, so
    # a 20,000-character message is searched only as far as that.
    text = text[: limit + 1]

    def cut(end: int) -> str:
        # An isolate around a value that is cut must still be closed, or it would run to the end of the line.
        return close_isolates(text[:end].rstrip(_DANGLING) + ELLIPSIS)

    def after_sentence(end: int) -> str:
        # "pakkeliste. …": the sentence keeps its own mark and the ellipsis says that more follows.
        return close_isolates(text[:end].rstrip() + " " + ELLIPSIS)

    def longest(ends: list[int], shaped: Callable[[int], str]) -> int | None:
        candidates = [end for end in ends if text[:end].strip(_DANGLING)]
        low, high, best = 0, len(candidates) - 1, None
        while low <= high:  # fits() only gets harder as the text grows, so a binary search finds the longest
            middle = (low + high) // 2
            if fits(shaped(candidates[middle])):
                best, low = candidates[middle], middle + 1
            else:
                high = middle - 1
        return best

    at_word = longest([match.start() for match in _WORD_END.finditer(text)], cut)
    if at_word is not None:
        at_sentence = longest([end for end in _sentence_ends(text) if end <= at_word + 1], after_sentence)
        if at_sentence is not None and len(text[:at_sentence].rstrip()) >= _SENTENCE_SHARE * at_word:
            return after_sentence(at_sentence)
        return cut(at_word)
    inside_word = longest(list(range(1, len(text))), cut)
    if inside_word is not None:
        return cut(inside_word)
    return ELLIPSIS if fits(ELLIPSIS) else None


def _join(parts: Iterable[str]) -> str:
    return "\n".join(part for part in parts if part)


def fit_sms(head: str, body: str, tail: str, cut_note: str = "", max_segments: int = 3) -> str:
    """An SMS of `head`, `body` and `tail`, one per line, in at most `max_segments` billed segments.

    When the whole does not fit, the body is cut after a whole sentence or word and ends in "…", and
    `cut_note` (e.g. "the whole message came by e-mail") goes before the tail. Blank lines in the body are
    closed up: in an SMS they cost characters and help little. The head and the tail (what it is about, who
    sent it) are kept whole unless they alone are too long; then the head is cut too.
    """
    head, tail, cut_note = str(head).strip(), str(tail).strip(), str(cut_note).strip()
    body = re.sub(r"\n\s*\n+", "\n", str(body).strip())

    def fits(text: str) -> bool:
        return measured_segments(text) <= max_segments

    limit = _SINGLE_GSM7_CHARACTERS * max_segments
    whole = _join((head, body, tail))
    # Measuring a 20,000-character message is the costly part; far beyond what any SMS holds, skip it.
    # (gsm7_friendly only drops invisible characters, so four times the limit cannot shrink to fit.)
    if len(whole) <= 4 * limit and fits(whole):
        return whole
    cut_body = _longest_fitting(body, lambda candidate: fits(_join((head, candidate, cut_note, tail))), limit)
    if cut_body is not None and cut_body != ELLIPSIS:
        return _join((head, cut_body, cut_note, tail))
    cut_head = _longest_fitting(head, lambda candidate: fits(_join((candidate, cut_note, tail))), limit)
    if cut_head is not None:
        return _join((cut_head, cut_note, tail))
    return _longest_fitting(_join((head, tail)), fits, limit) or ELLIPSIS


@dataclass(frozen=True, slots=True)
class SmsLine:
    """One line of a composed SMS, and what becomes of it when the SMS is over its budget.

    `drop` is None for a line that is always kept, else the step at which it gives way (1 first, then 2, …;
    lines with the same step give way together). Giving way means becoming `instead`: nothing, or a shorter
    line that says nearly the same (the number of lessons instead of their names). Once the SMS fits, lines
    that gave way come back, the latest step first, while they fit in the room left; a `cut` line (free text)
    comes back cut at a sentence or word to fill that room, as long as enough of it remains to say something.
    The order holds whatever the letters: a line never stays while one with a later step has given way, even
    when the later one is the only line that needs UCS-2 (a Polish "ś") and the earlier one would still fit
    in GSM-7. `label` goes before the text ("About the meeting:") and is never cut.
    """

    text: str
    drop: int | None = None
    instead: str = ""
    cut: bool = False
    label: str = ""

    @property
    def whole(self) -> str:
        return _labelled(self.label, self.text)


def _labelled(label: str, text: str) -> str:
    return f"{label} {text}" if label and text else text


def _one_line(value: object) -> str:
    return _LINE_SPACE.sub(" ", "" if value is None else str(value)).strip(" ")


def sms_line(
    text: object, drop: int | None = None, instead: object = "", cut: bool = False, label: object = ""
) -> SmsLine:
    """An `SmsLine` from what a template has: any value, None or empty for a line that is not there.

    Runs of white space, line breaks included, become one space: an agenda typed on three lines is one line.
    """
    return SmsLine(text=_one_line(text), drop=drop, instead=_one_line(instead), cut=cut, label=_one_line(label))


def _restored(line: SmsLine, current: list[str], index: int, budget: int) -> str:
    # `line` (which has given way) back in full if that fits with the others as they now stand, else as much
    # of it as fits if it is a cut line, else left as it is.
    def fits_with(text: str) -> bool:
        trial = list(current)
        trial[index] = text
        return measured_segments(_join(trial)) <= budget

    if fits_with(line.whole):
        return line.whole
    if line.cut:
        kept = _longest_fitting(
            line.text, lambda value: fits_with(_labelled(line.label, value)), _SINGLE_GSM7_CHARACTERS * budget
        )
        if kept is not None and len(without_isolates(kept).removesuffix(ELLIPSIS)) >= _SHORTEST_USEFUL_CUT:
            return _labelled(line.label, kept)
    return current[index]


def _compose(lines: Sequence[SmsLine], budget: int) -> str:
    current = [line.whole for line in lines]
    if measured_segments(_join(current)) <= budget:
        return _join(current)
    steps = sorted({line.drop for line in lines if line.drop is not None})
    for given_way, step in enumerate(steps, start=1):
        for index, line in enumerate(lines):
            if line.drop == step:
                current[index] = line.instead
        if measured_segments(_join(current)) <= budget:
            # Room may be left over: the lines that gave way get it back, the more important first. A step
            # that does not come back whole ends the restoring, so a less important line never takes room a
            # more important one could not have, as when only the more important one needs UCS-2.
            for back in reversed(steps[:given_way]):
                restored_whole = True
                for index, line in enumerate(lines):
                    if line.drop == back:
                        current[index] = _restored(line, current, index, budget)
                        restored_whole = restored_whole and current[index] == line.whole
                if not restored_whole:
                    break
            return _join(current)
    # Only the essential lines are left and they are still too long: keep the last (who sent it) and cut the
    # rest from the end. Realistic titles and places never get here; a 300-character room name would.
    kept = [text for text in current if text]
    return fit_sms(_join(kept[:-1]), "", kept[-1] if kept else "", "", budget)


def compose_sms(lines: Iterable[SmsLine | None], segments: int, max_segments: int | None = None, *larger: int) -> str:
    """The `lines` that fit in `segments` billed segments, or in `max_segments` when the essentials need it
    (and in each of `larger` in turn, for a notice whose essentials include a link: see meeting_invitation).

    The smaller budget is used whenever the lines that are always kept (with every optional line given way)
    fit in it; otherwise the larger one, where the optional lines get their room back. That keeps Norwegian
    and English (GSM-7) notices to two segments while a UCS-2 language, whose segment holds 67 characters,
    may use a third rather than lose what, when or where. Lines that are None or empty are left out.

    The essentials are measured in the encoding the notice's own lines need: every line but free text (the
    agenda, a note), which may be cut or dropped. A Polish notice whose essentials happen to be plain ASCII
    ("Miejsce: Rom 204") is still Polish once its greeting or its "Jeśli nie uda się przyjść" is there, so
    it is measured as UCS-2 and gets the third segment, instead of keeping two by dropping every Polish line.
    """
    present = [line for line in lines if isinstance(line, SmsLine) and line.text]
    budgets = sorted({segments, max_segments or segments, *larger})
    reduced = _join(line.whole if line.drop is None else line.instead for line in present)
    encoding = needed_encoding(_join(line.whole for line in present if not line.cut))
    for budget in budgets[:-1]:
        if measured_segments(reduced, encoding) <= budget:
            return _compose(present, budget)
    return _compose(present, budgets[-1])


def shorten(text: str | None, width: int) -> str:
    """Free text on one line in at most `width` characters, cut as an SMS is (at a sentence or word, "…")."""
    line = _one_line(text)
    if len(line) <= width:
        return line
    return _longest_fitting(line, lambda candidate: len(candidate) <= width, width) or ""
