"""The HTML e-mail is a well-formed document that phones and mail clients can show."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from notify_shared.contract.meetings import MeetingKind

from .render_factories import LANGUAGES, TEMPLATES, meeting, render

VOID_ELEMENTS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})


class _TagBalance(HTMLParser):
    """Records every tag that is closed out of order or left open."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []
        self.seen: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.add(tag)
        if tag not in VOID_ELEMENTS:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_ELEMENTS:
            return
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
            return
        self.open.pop()


def _check(html: str) -> _TagBalance:
    parser = _TagBalance()
    parser.feed(html)
    parser.close()
    assert not parser.problems
    assert not parser.open, f"left open: {parser.open}"
    return parser


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_html_is_balanced_and_a_full_document(template: str, language: str) -> None:
    parser = _check(render(template, language).html)

    assert {"html", "head", "meta", "title", "body", "table", "h1", "p"} <= parser.seen
    assert "style" not in parser.seen  # inline styles only: many mail clients drop <style> blocks
    assert "script" not in parser.seen


@pytest.mark.parametrize("template", TEMPLATES)
def test_html_without_optional_fields_is_balanced(template: str) -> None:
    bare = meeting(agenda=None, organizer_name=None, kind=MeetingKind.OTHER)

    _check(render(template, "nn", meeting=bare, previous=None, cancellation_note=None, changes=frozenset()).html)


def test_html_is_readable_on_a_phone() -> None:
    html = render("meeting_invitation", "nb").html

    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "max-width:600px" in html
    assert "font-size:16px" in html


def test_agenda_paragraphs_become_html_paragraphs() -> None:
    html = render(
        "meeting_invitation", "nb", meeting=meeting(agenda="Første punkt\nAndre punkt\n\nTa med matpakke")
    ).html

    assert "Første punkt<br>\nAndre punkt</p>" in html
    assert ">Ta med matpakke</p>" in html
