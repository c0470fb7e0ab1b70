"""The meeting reminder: an e-mail a few days before and an SMS a couple of hours before, in nb, nn and en."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest

from notify_shared.contract.meetings import Meeting, MeetingKind
from notify_shared.rendering import OPTIONAL_CONTEXT, RenderedNotification, sms_encoding, sms_segments, template_names

from .render_factories import AGENDA, LANGUAGES, OSLO, guardian, meeting, render, school, visible

REMINDER = "meeting_reminder"
PLACE = "Rom 204, Bjølsen skole"
LONG_TITLE = "Utviklingssamtale for Emma Nordmann-Hansen, 7B"
LONG_PLACE = "Møterom 2. etasje, Bjølsen skole"

WHEN = {
    "nb": "torsdag 3. desember 2026 kl. 18:00–19:30",
    "nn": "torsdag 3. desember 2026 kl. 18:00–19:30",
    "en": "Thursday 3 December 2026, 18:00–19:30",
}
MOVED_NOTE = {
    "nb": "Merk: Tidspunktet eller stedet er endret siden du fikk invitasjonen.",
    "nn": "Merk: Tidspunktet eller staden er endra sidan du fekk invitasjonen.",
    "en": "Please note: the time or place has changed since you received the invitation.",
}
SMS_MOVED_NOTE = {
    "nb": "Merk: ny tid eller nytt sted.",
    "nn": "Merk: ny tid eller ny stad.",
    "en": "Note: new time or place.",
}
HOSTILE_TITLE = "Møte {{ 7*7 }} <script>alert(1)</script>"
HOSTILE_AGENDA = "{% for x in y %}punkt{% endfor %}\n<script>alert(1)</script> & <b>fet</b>\n{{ self.__init__ }}"
HOSTILE_PLACE = "Rom {{ 6*7 }} <img src=x onerror=alert(1)>"


def reminder(language: str = "nb", **overrides: Any) -> RenderedNotification:
    """A reminder with realistic data: the factories' meeting, in a room named as schools write it."""
    overrides.setdefault("meeting", meeting(location=PLACE))
    return render(REMINDER, language, **overrides)


def long_meeting(**overrides: Any) -> Meeting:
    """A development talk with a long, realistic title and place, on a date with long day and month names."""
    values: dict[str, Any] = {
        "kind": MeetingKind.DEVELOPMENT_TALK,
        "title": LONG_TITLE,
        "location": LONG_PLACE,
        "starts_at": datetime(2026, 9, 30, 18, 0, tzinfo=OSLO),
        "ends_at": datetime(2026, 9, 30, 19, 30, tzinfo=OSLO),
        "pupil_present": True,
    }
    return meeting(**(values | overrides))


class _TagBalance(HTMLParser):
    VOID = frozenset({"br", "meta", "img", "hr", "input", "link"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []
        self.seen: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.add(tag)
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
            return
        self.open.pop()


def _parsed(html: str) -> _TagBalance:
    parser = _TagBalance()
    parser.feed(html)
    parser.close()
    assert not parser.problems
    assert not parser.open, f"left open: {parser.open}"
    return parser


def test_the_reminder_is_a_template_and_moved_defaults_to_false() -> None:
    assert REMINDER in template_names()
    assert OPTIONAL_CONTEXT["moved"] is False


def test_bokmal_reminder_email_says_what_when_where_and_what_to_prepare() -> None:
    rendered = reminder("nb")

    assert rendered.language == "nb"
    assert rendered.subject == "Påminnelse: Foreldremøte 7B, torsdag 3. desember 2026 kl. 18:00"
    assert rendered.text.startswith(
        "Hei Kari Nordmann,\n\nDette er en påminnelse om foreldremøtet ved Bjølsen skole.\n"
    )
    assert (
        "Møte: Foreldremøte 7B\nTid: torsdag 3. desember 2026 kl. 18:00–19:30\nSted: Rom 204, Bjølsen skole"
        in rendered.text
    )
    assert f"Om møtet:\n{AGENDA}" in rendered.text
    assert "Hvis du ikke kan komme, gi gjerne beskjed til skolen." in rendered.text
    assert "Vennlig hilsen\nMarte Kirkerud\nBjølsen skole" in rendered.text
    assert rendered.text.rstrip().endswith(
        "Du får denne e-posten fordi du er registrert som foresatt ved Bjølsen skole."
    )
    assert "logg inn" not in rendered.text.lower()
    assert "Merk" not in rendered.text
    for part in (
        "Påminnelse: Foreldremøte 7B",
        "torsdag 3. desember 2026 kl. 18:00–19:30",
        "Rom 204, Bjølsen skole",
        "Hei Kari Nordmann,",
        "Vi snakker om klasseturen til Sognsvann i mai og om leksehjelp.<br>",
        "Marte Kirkerud",
    ):
        assert part in visible(rendered.html), part


def test_nynorsk_reminder_is_written_in_nynorsk() -> None:
    rendered = reminder("nn")

    assert rendered.language == "nn"
    assert rendered.subject == "Påminning: Foreldremøte 7B, torsdag 3. desember 2026 kl. 18:00"
    assert "Dette er ei påminning om foreldremøtet ved Bjølsen skole." in rendered.text
    assert "Stad: Rom 204, Bjølsen skole" in rendered.text
    assert "Om du ikkje kan kome, gje gjerne beskjed til skulen." in rendered.text
    assert "Venleg helsing\nMarte Kirkerud\nBjølsen skole" in rendered.text
    assert "Påminning om foreldremøte: Foreldremøte 7B" in rendered.sms
    assert "Helsing Marte Kirkerud, Bjølsen skole" in rendered.sms
    everything = rendered.subject + rendered.text + rendered.sms
    for bokmal in ("Påminnelse", " ikke ", "komme", "skolen", "Sted:", "Vennlig", "Hilsen"):
        assert bokmal not in everything, bokmal
    nb = reminder("nb")
    assert (rendered.subject, rendered.text, rendered.sms) != (nb.subject, nb.text, nb.sms)


def test_english_reminder_is_in_english() -> None:
    rendered = reminder("en")

    assert rendered.subject == "Reminder: Foreldremøte 7B, Thursday 3 December 2026 at 18:00"
    assert rendered.text.startswith(
        "Dear Kari Nordmann,\n\nThis is a reminder of the parent meeting at Bjølsen skole.\n"
    )
    assert "Meeting: Foreldremøte 7B\nTime: Thursday 3 December 2026, 18:00–19:30\nPlace: Rom 204, Bjølsen skole" in (
        rendered.text
    )
    assert "About the meeting:\nVi snakker om klasseturen" in rendered.text
    assert "If you cannot come, please let the school know." in rendered.text
    assert "Kind regards,\nMarte Kirkerud\nBjølsen skole" in rendered.text
    assert rendered.sms.startswith("Reminder of a parent meeting: Foreldremøte 7B\n")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_part_carries_title_time_and_place(language: str) -> None:
    rendered = reminder(language)
    sms_when = WHEN[language].replace("–", "-")

    assert rendered.template == REMINDER
    assert rendered.direction == "ltr"
    assert "\n" not in rendered.subject
    assert "Foreldremøte 7B" in rendered.subject
    assert ("3. desember 2026" if language != "en" else "3 December 2026") in rendered.subject
    for body in (rendered.text, rendered.html):
        assert "Foreldremøte 7B" in body
        assert WHEN[language] in body
        assert PLACE in body
        assert "Ta gjerne med forslag til dugnad" in body
        assert "Bjølsen skole" in body
    assert "Foreldremøte 7B" in rendered.sms
    assert sms_when in rendered.sms
    assert PLACE in rendered.sms
    assert rendered.sms.endswith("Marte Kirkerud, Bjølsen skole")
    assert rendered.text.endswith("\n")
    assert not rendered.text.endswith("\n\n")
    assert "\n\n" not in rendered.sms


KIND_LEADS: dict[str, dict[MeetingKind, tuple[str, str]]] = {
    "nb": {
        MeetingKind.PARENT_MEETING: ("påminnelse om foreldremøtet ved", "Påminnelse om foreldremøte:"),
        MeetingKind.DEVELOPMENT_TALK: ("påminnelse om utviklingssamtalen ved", "Påminnelse om utviklingssamtale:"),
        MeetingKind.OTHER: ("påminnelse om møtet ved", "Påminnelse om møte:"),
    },
    "nn": {
        MeetingKind.PARENT_MEETING: ("påminning om foreldremøtet ved", "Påminning om foreldremøte:"),
        MeetingKind.DEVELOPMENT_TALK: ("påminning om utviklingssamtalen ved", "Påminning om utviklingssamtale:"),
        MeetingKind.OTHER: ("påminning om møtet ved", "Påminning om møte:"),
    },
    "en": {
        MeetingKind.PARENT_MEETING: ("reminder of the parent meeting at", "Reminder of a parent meeting:"),
        MeetingKind.DEVELOPMENT_TALK: ("reminder of the development talk at", "Reminder of a development talk:"),
        MeetingKind.OTHER: ("reminder of the meeting at", "Reminder of a meeting:"),
    },
}


@pytest.mark.parametrize("kind", list(MeetingKind))
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_kind_of_meeting_is_named_in_words(kind: MeetingKind, language: str) -> None:
    lead, sms_lead = KIND_LEADS[language][kind]

    rendered = reminder(language, meeting=meeting(kind=kind, location=PLACE))

    assert f"{lead} Bjølsen skole." in rendered.text
    assert f"{lead} Bjølsen skole." in visible(rendered.html)
    assert rendered.sms.startswith(f"{sms_lead} Foreldremøte 7B\n")


def test_a_development_talk_says_whether_the_child_comes() -> None:
    with_pupil = reminder("nn", meeting=long_meeting())
    without = reminder("nb", meeting=long_meeting(pupil_present=False))

    assert "Barnet ditt er òg invitert til samtalen." in with_pupil.text
    assert "Barnet ditt er òg invitert til samtalen." in with_pupil.html
    assert "Barnet ditt skal ikke være med på denne samtalen." in without.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_moved_adds_a_short_note_to_every_part(language: str) -> None:
    rendered = reminder(language, moved=True)

    assert MOVED_NOTE[language] in rendered.text
    assert MOVED_NOTE[language] in rendered.html
    assert SMS_MOVED_NOTE[language] in rendered.sms
    # Right after the lead, before the details it is about.
    assert rendered.text.index(MOVED_NOTE[language]) < rendered.text.index(WHEN[language])


@pytest.mark.parametrize("language", LANGUAGES)
def test_without_moved_there_is_no_note(language: str) -> None:
    for rendered in (reminder(language), reminder(language, moved=False)):
        everything = rendered.text + rendered.html + rendered.sms
        assert MOVED_NOTE[language] not in everything
        assert SMS_MOVED_NOTE[language] not in everything


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("moved", [False, True])
@pytest.mark.parametrize("organizer", ["Marte Kirkerud", None])
@pytest.mark.parametrize(
    "the_meeting",
    [
        pytest.param(meeting(location=PLACE), id="realistic"),
        pytest.param(long_meeting(), id="long-title-and-place"),
        pytest.param(long_meeting(kind=MeetingKind.OTHER, agenda="Klassetur og prøver. " * 30), id="long-all"),
    ],
)
def test_reminder_sms_is_gsm7_and_at_most_two_segments(
    language: str, moved: bool, organizer: str | None, the_meeting: Meeting
) -> None:
    the_meeting = the_meeting.model_copy(update={"organizer_name": organizer})

    rendered = reminder(language, meeting=the_meeting, moved=moved)

    assert rendered.sms_encoding == "GSM-7", [char for char in rendered.sms if sms_encoding(char) != "GSM-7"]
    assert rendered.sms_segments <= 2, (len(rendered.sms), rendered.sms)
    assert rendered.sms_segments == sms_segments(rendered.sms)
    # What the parent needs on the way is never what gets dropped.
    assert the_meeting.title in rendered.sms
    assert the_meeting.location in rendered.sms
    assert "18:00-19:30" in rendered.sms
    assert "Bjølsen skole" in rendered.sms
    assert (SMS_MOVED_NOTE[language] in rendered.sms) is moved


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_sms_has_the_agenda_when_it_fits_and_leaves_it_out_when_not(language: str) -> None:
    label = {"nb": "Om møtet:", "nn": "Om møtet:", "en": "About the meeting:"}[language]

    fits = reminder(language)
    too_long = reminder(language, meeting=long_meeting(), moved=True)

    (agenda_line,) = [line for line in fits.sms.split("\n") if line.startswith(label)]
    # Cut at a word to fill the second segment, not at a fixed number of characters.
    assert agenda_line.startswith(f"{label} Vi snakker om klasseturen til Sognsvann i mai og om leksehjelp.")
    assert agenda_line.endswith("...")
    assert fits.sms_segments == 2
    assert label not in too_long.sms
    assert "Vi snakker om klasseturen" in too_long.text  # the e-mail always has it in full


def test_a_long_agenda_is_shortened_in_the_sms_but_whole_in_the_email() -> None:
    long_agenda = "Klassetur, leksehjelp og nasjonale prøver. " * 20

    rendered = reminder("nb", meeting=meeting(location=PLACE, agenda=long_agenda))

    assert "Om møtet: Klassetur, leksehjelp og nasjonale prøver." in rendered.sms
    assert "..." in rendered.sms
    assert rendered.sms_segments <= 2
    assert long_agenda.strip() in rendered.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_reminder_without_optional_fields_has_no_gaps(language: str) -> None:
    bare = meeting(agenda=None, organizer_name=None, kind=MeetingKind.OTHER, location=PLACE)

    rendered = reminder(language, meeting=bare)

    assert "None" not in rendered.subject + rendered.text + rendered.html + rendered.sms
    assert "\n\n\n" not in rendered.text
    assert "\n\n" not in rendered.sms
    assert "Om møtet" not in rendered.text + rendered.sms
    assert "About the meeting" not in rendered.text + rendered.sms
    assert rendered.sms.endswith({"nb": "Hilsen", "nn": "Helsing", "en": "Kind regards,"}[language] + " Bjølsen skole")
    _parsed(rendered.html)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("moved", [False, True])
def test_reminder_html_is_a_balanced_full_document(language: str, moved: bool) -> None:
    rendered = reminder(language, moved=moved)
    parser = _parsed(rendered.html)

    assert rendered.html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{language}" dir="ltr">' in rendered.html
    assert {"html", "head", "meta", "title", "body", "table", "h1", "h2", "p"} <= parser.seen
    assert "style" not in parser.seen
    assert "script" not in parser.seen


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("moved", [False, True])
def test_user_text_in_a_reminder_is_shown_literally_and_escaped_in_html(language: str, moved: bool) -> None:
    hostile = meeting(title=HOSTILE_TITLE, agenda=HOSTILE_AGENDA, location=HOSTILE_PLACE)

    rendered = reminder(
        language,
        meeting=hostile,
        moved=moved,
        guardian=guardian(name="Kari <b>Nordmann</b>"),
        school=school(name="Bjølsen {{ skole }}"),
    )

    plain = rendered.subject + rendered.text + rendered.sms
    assert "{{ 7*7 }}" in rendered.subject
    assert "{{ 7*7 }}" in rendered.sms
    assert "Rom {{ 6*7 }}" in rendered.text
    assert "Rom {{ 6*7 }}" in rendered.sms
    assert "{% for x in y %}punkt{% endfor %}" in rendered.text
    assert "{{ self.init }}" in rendered.text  # the agenda is Markdown: "__init__" is a bold "init"
    assert "<script>alert(1)</script>" in rendered.text
    assert "Kari <b>Nordmann</b>" in rendered.text
    assert "Bjølsen {{ skole }}" in rendered.text
    assert "Bjølsen {{ skole }}" in rendered.sms
    assert "49" not in plain + rendered.html
    assert "42" not in plain + rendered.html
    assert "&amp;" not in plain
    assert "<script" not in rendered.html
    assert "<img" not in rendered.html
    assert "<b>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "{{ 7*7 }}" in rendered.html
    assert "{% for x in y %}punkt{% endfor %}" in rendered.html
    assert "&amp; &lt;b&gt;fet&lt;/b&gt;" in rendered.html
    assert "Kari &lt;b&gt;Nordmann&lt;/b&gt;" in rendered.html
    _parsed(rendered.html)


def test_sentences_from_the_macros_are_escaped_exactly_once_in_html() -> None:
    rendered = reminder(
        "nb",
        guardian=guardian(name="Kari & <Ola>"),
        meeting=meeting(title="Møte <7B> & co", location=PLACE),
        school=school(name="Skole & <Co>"),
    )

    assert "Hei Kari &amp; &lt;Ola&gt;," in visible(rendered.html)
    assert "Påminnelse: Møte &lt;7B&gt; &amp; co" in visible(rendered.html)
    assert "foreldremøtet ved Skole &amp; &lt;Co&gt;." in visible(rendered.html)
    assert "&amp;amp;" not in rendered.html
    assert "&amp;lt;" not in rendered.html
    assert "Hei Kari & <Ola>," in rendered.text
    assert "Påminnelse om foreldremøte: Møte <7B> & co" in rendered.sms


def test_reminders_never_carry_contact_details() -> None:
    rendered = reminder("nb", moved=True)

    everything = rendered.subject + rendered.text + rendered.html + rendered.sms
    assert "kari.nordmann@example.no" not in everything
    assert "91234567" not in everything


def test_a_meeting_sent_in_utc_is_shown_in_school_time() -> None:
    utc_meeting = meeting(
        location=PLACE,
        starts_at=datetime(2026, 12, 3, 17, 0, tzinfo=UTC),
        ends_at=datetime(2026, 12, 3, 18, 30, tzinfo=UTC),
    )

    rendered = reminder("nb", meeting=utc_meeting)

    assert rendered.subject.endswith("kl. 18:00")
    assert "kl. 18:00–19:30" in rendered.text
    assert "kl. 18:00-19:30" in rendered.sms
