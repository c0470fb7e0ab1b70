"""Text typed by teachers and admin systems is shown as typed: never run as a template, never as HTML."""

from __future__ import annotations

from pathlib import Path

import pytest

import notify_shared

from .render_factories import LANGUAGES, TEMPLATES, guardian, meeting, render, school, visible

HOSTILE_TITLE = "Møte {{ 7*7 }} <script>alert(1)</script>"
HOSTILE_AGENDA = "{% for x in y %}punkt{% endfor %}\n<script>alert(1)</script> & <b>fet</b>\n{{ self.__init__ }}"
HOSTILE_PLACE = "Rom {{ 6*7 }} <img src=x onerror=alert(1)>"
HOSTILE_NOTE = "{{ cancellation_note }} <script>alert(1)</script>"


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_template_syntax_and_markup_in_user_text_are_shown_literally(template: str, language: str) -> None:
    hostile = meeting(title=HOSTILE_TITLE, agenda=HOSTILE_AGENDA, location=HOSTILE_PLACE)
    previous = meeting(location="Rom {{ 1+1 }} <script>", agenda=None)

    rendered = render(
        template,
        language,
        meeting=hostile,
        previous=previous,
        cancellation_note=HOSTILE_NOTE,
        guardian=guardian(name="Kari <b>Nordmann</b>"),
        school=school(name="Bjølsen {{ skole }}"),
    )

    plain = rendered.subject + rendered.text + rendered.sms
    assert "{{ 7*7 }}" in plain
    assert "Rom {{ 6*7 }}" in rendered.text
    assert "49" not in plain + rendered.html
    assert "42" not in plain + rendered.html
    assert "<script>alert(1)</script>" in rendered.text
    assert "Kari <b>Nordmann</b>" in rendered.text
    assert "Bjølsen {{ skole }}" in rendered.text
    assert "<script" not in rendered.html
    assert "<img" not in rendered.html
    assert "<b>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "{{ 7*7 }}" in rendered.html
    if template != "meeting_cancellation":
        assert "{% for x in y %}punkt{% endfor %}" in rendered.text
        assert "{% for x in y %}punkt{% endfor %}" in rendered.html
        assert "&amp; &lt;b&gt;fet&lt;/b&gt;" in rendered.html
        # The agenda is Markdown, where "__init__" is a bold "init"; what matters is that nothing ran.
        assert "{{ self.init }}" in rendered.text
        assert "{{ self.<strong>init</strong> }}" in rendered.html


def test_text_bodies_are_not_html_escaped() -> None:
    rendered = render("meeting_invitation", "nb", meeting=meeting(title="Foreldre & lærere <7B>"))

    assert "Foreldre & lærere <7B>" in rendered.subject
    assert "Foreldre & lærere <7B>" in rendered.text
    assert "&amp;" not in rendered.text + rendered.sms + rendered.subject
    assert "Foreldre &amp; lærere &lt;7B&gt;" in rendered.html


def test_a_cancellation_note_is_shown_literally() -> None:
    rendered = render("meeting_cancellation", "nb", cancellation_note=HOSTILE_NOTE)

    assert HOSTILE_NOTE in rendered.text
    assert "&lt;script&gt;" in rendered.html


@pytest.mark.parametrize("template", TEMPLATES)
def test_sentences_shared_between_text_and_html_are_escaped_exactly_once_in_html(template: str) -> None:
    # The shared sentences (greeting, lead, sign-off) come from macros; see TemplateLoader for the trap.
    rendered = render(template, "nb", guardian=guardian(name="Kari & <Ola>"), meeting=meeting(title="Møte <7B> & co"))

    assert "Hei Kari &amp; &lt;Ola&gt;," in visible(rendered.html)
    assert "Møte &lt;7B&gt; &amp; co" in visible(rendered.html)
    assert "&amp;amp;" not in rendered.html
    assert "&amp;lt;" not in rendered.html
    assert "Hei Kari & <Ola>," in rendered.text


def test_html_templates_import_the_escaping_twin_of_the_sentences() -> None:
    templates = Path(notify_shared.__file__).parent / "templates"

    for html in templates.rglob("*.html"):
        assert '"_macros.txt"' not in html.read_text(encoding="utf-8"), f"{html.name}: import _macros.html"
