"""Agendas and cancellation notes are Markdown, as the contract says: safe HTML, readable text and SMS.

A school's admin system passes what the teacher typed. Before, `**matpakke**` and `[skolens side](https://…)`
reached parents as typed; raw HTML must still never become markup, and only http, https and mailto links
become links.
"""

from __future__ import annotations

import pytest

from notify_shared.rendering import RenderedNotification

from .render_factories import meeting, render, visible
from .test_render_html import _check
from .test_render_markdown import assert_no_active_content

AGENDA = (
    "Husk **matpakke** og *drikke*.\n"
    "Plan: [skolens side](https://skole.no/plan) og [klikk](javascript:alert(1)).\n"
    "<script>alert(1)</script> <img src=x onerror=alert(1)>"
)
LANGUAGES = ("nb", "pl", "ar")


def _rendered(template: str, language: str) -> RenderedNotification:
    if template == "meeting_cancellation":
        return render(template, language, cancellation_note=AGENDA)
    return render(template, language, meeting=meeting(agenda=AGENDA))


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    "template", ["meeting_invitation", "meeting_reminder", "meeting_update", "meeting_cancellation"]
)
def test_markdown_in_the_agenda_is_formatted_in_the_email_and_raw_html_is_text(template: str, language: str) -> None:
    html = _rendered(template, language).html

    _check(html)
    assert_no_active_content(html)
    assert "<strong>matpakke</strong>" in html
    assert "<em>drikke</em>" in html
    assert '<a href="https://skole.no/plan"' in html
    assert ">skolens side</a>" in html
    assert "**" not in visible(html)
    # The script URL is no link, and the raw HTML is shown as the text it is.
    assert "[klikk](javascript:alert(1))" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    "template", ["meeting_invitation", "meeting_reminder", "meeting_update", "meeting_cancellation"]
)
def test_markdown_in_the_agenda_reads_as_plain_text_in_the_text_part(template: str, language: str) -> None:
    text = _rendered(template, language).text

    assert "Husk matpakke og drikke." in text
    assert "skolens side (https://skole.no/plan)" in text
    assert "**" not in text
    assert "](https://" not in text


@pytest.mark.parametrize("template", ["meeting_invitation", "meeting_reminder", "meeting_cancellation"])
def test_markdown_in_the_agenda_reads_as_plain_text_in_the_sms(template: str) -> None:
    short_agenda = "Husk **matpakke**, se [planen](https://skole.no/plan)."
    if template == "meeting_cancellation":
        rendered = render(template, "nb", cancellation_note=short_agenda)
    else:
        rendered = render(template, "nb", meeting=meeting(agenda=short_agenda, organizer_name=None))

    assert "Husk matpakke, se planen (https://skole.no/plan)." in rendered.sms
    assert "**" not in rendered.sms
    assert "](" not in rendered.sms
