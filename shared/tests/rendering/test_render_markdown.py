"""Teachers' Markdown: safe HTML for the e-mail, readable plain text for the text part and SMS."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from notify_shared.rendering import markdown_to_html, markdown_to_text
from notify_shared.rendering.environment import environment_for

ALLOWED_TAGS = frozenset({"p", "br", "strong", "em", "ul", "ol", "li", "a", "code", "pre", "blockquote", "hr"})
ALLOWED_ATTRIBUTES = frozenset({"href", "rel", "target", "style", "start", "title"})
SAFE_SCHEMES = ("http:", "https:", "mailto:")

HOSTILE = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    '<a href="javascript:alert(1)">klikk</a>',
    '<a href="https://skole.no" onclick="alert(1)">klikk</a>',
    "[klikk](javascript:alert(1))",
    "[klikk](JaVaScRiPt:alert(1))",
    "[klikk]( javascript:alert(1) )",
    "[klikk](<javascript:alert(1)>)",
    "[klikk](&#106;avascript:alert(1))",
    "[klikk](java&#x09;script:alert(1))",
    "[klikk](javascript&colon;alert(1))",
    "[klikk](vbscript:msgbox(1))",
    "[klikk](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[klikk](file:///etc/passwd)",
    "[klikk][ref]\n\n[ref]: javascript:alert(1)",
    "<javascript:alert(1)>",
    "![bilde](javascript:alert(1))",
    '![bilde](https://skole.no/a.png" onerror="alert(1))',
    '[klikk](https://skole.no "tittel" onmouseover="alert(1)")',
    '[klikk](https://skole.no "x\\" onmouseover=\\"alert(1)")',
    "<style>body{display:none}</style>",
    "<iframe src=https://evil.example></iframe>",
    "javascript:alert(1)",
    "<!-- kommentar --> <div>blokk</div>",
)


MARKUP_FRAGMENTS = (
    *"<>[]()!*_`\"'&#;:-/\\=\n\t ",
    *("1.", "a", "img", "svg", "alert(1)", "javascript", "JAVASCRIPT", "script", "onerror=", "href="),
    *("http", "mailto", "www.", ".no", "&#58;", "&colon;", "%3A"),
)
"""Pieces of Markdown, HTML and script URLs for the property test to combine."""


class _Scan(HTMLParser):
    """Every tag and attribute in a fragment of HTML, as a browser's tokenizer would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend((name, value or "") for name, value in attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def scan(html: str) -> _Scan:
    parser = _Scan()
    parser.feed(html)
    parser.close()
    return parser


def assert_safe(html: str) -> None:
    found = scan(html)
    assert set(found.tags) <= ALLOWED_TAGS, found.tags
    for name, value in found.attributes:
        assert name in ALLOWED_ATTRIBUTES, name
        assert not name.startswith("on"), name
        if name == "href":
            assert value.strip().lower().startswith(SAFE_SCHEMES), value
        assert "javascript:" not in value.lower(), (name, value)


def assert_no_active_content(html: str) -> None:
    """For whole e-mails: no element that loads or runs anything, no event handler, no script URL."""
    found = scan(html)
    assert not {"script", "img", "svg", "iframe", "object", "embed", "style", "form", "input"} & set(found.tags)
    for name, value in found.attributes:
        assert not name.startswith("on"), name
        assert "javascript:" not in value.lower(), (name, value)
        if name in ("href", "src"):
            assert value.strip().lower().startswith(SAFE_SCHEMES), value


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_input_never_produces_script_tags_handlers_or_unsafe_links(hostile: str) -> None:
    html = markdown_to_html(f"Hei!\n\n{hostile}\n\n- {hostile}\n\n> {hostile}")

    assert_safe(html)


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.lists(
        st.sampled_from(MARKUP_FRAGMENTS),
        max_size=40,
    ).map("".join)
)
def test_any_mix_of_markup_and_script_fragments_stays_safe(text: str) -> None:
    assert_safe(markdown_to_html(text))


def test_raw_html_is_shown_as_text() -> None:
    html = markdown_to_html("Se <script>alert(1)</script> og <b>fet</b> & <img src=x onerror=alert(1)>")

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;fet&lt;/b&gt; &amp; &lt;img src=x onerror=alert(1)&gt;" in html
    assert markdown_to_text("Se <b>fet</b> & <i>") == "Se <b>fet</b> & <i>"


def test_template_syntax_is_data() -> None:
    text = "Svar {{ 7*7 }} og {% for x in y %}punkt{% endfor %} {# kommentar #}"

    assert markdown_to_text(text) == text
    assert "{{ 7*7 }} og {% for x in y %}punkt{% endfor %} {# kommentar #}" in markdown_to_html(text)


def test_bold_and_italics() -> None:
    html = markdown_to_html("Husk **matpakke** og *drikke*, __lue__ og _votter_.")

    assert "<strong>matpakke</strong>" in html
    assert "<em>drikke</em>" in html
    assert "<strong>lue</strong>" in html
    assert (
        markdown_to_text("Husk **matpakke** og *drikke*, __lue__ og _votter_.")
        == "Husk matpakke og drikke, lue og votter."
    )


def test_bullet_and_numbered_lists() -> None:
    text = "Ta med:\n\n- matpakke\n- drikke\n  - vann\n  - saft\n- lue\n\nPlan:\n\n3. samles\n4. går"
    html = markdown_to_html(text)

    assert "<ul" in html
    assert '<li style="margin:0 0 4px 0;">matpakke</li>' in html
    assert '<ol start="3"' in html
    assert markdown_to_text(text) == (
        "Ta med:\n\n- matpakke\n- drikke\n  - vann\n  - saft\n- lue\n\nPlan:\n\n3. samles\n4. går"
    )


def test_loose_lists_keep_their_blank_lines_in_text() -> None:
    assert markdown_to_text("- første\n\n- andre\n\nSlutt") == "- første\n\n- andre\n\nSlutt"
    assert markdown_to_text("1. ett\n2. to\n\n   forklaring") == "1. ett\n\n2. to\n\n   forklaring"


def test_links_are_clickable_and_open_safely() -> None:
    html = markdown_to_html("Se [påmeldingen](https://skole.no/tur?a=1&b=2) eller [skriv](mailto:ola@skole.no).")

    assert '<a href="https://skole.no/tur?a=1&amp;b=2"' in html
    assert 'rel="noopener noreferrer" target="_blank">påmeldingen</a>' in html
    assert (
        '<a href="mailto:ola@skole.no" style="color:#1d4ed8;text-decoration:underline;" rel="noopener noreferrer">'
        in html
    )
    assert markdown_to_text("Se [påmeldingen](https://skole.no/tur) eller [skriv](mailto:ola@skole.no).") == (
        "Se påmeldingen (https://skole.no/tur) eller skriv (ola@skole.no)."
    )


def test_bare_addresses_become_links_and_read_once_in_text() -> None:
    text = "Les https://bjolsen.osloskolen.no/tur, www.udir.no eller skriv til ola@skole.no."
    html = markdown_to_html(text)

    assert '<a href="https://bjolsen.osloskolen.no/tur"' in html
    assert '<a href="http://www.udir.no"' in html
    assert '<a href="mailto:ola@skole.no"' in html
    assert markdown_to_text(text) == text
    assert markdown_to_text("<https://skole.no>") == "https://skole.no"


@pytest.mark.parametrize(
    "text",
    ["[klikk](javascript:alert(1))", "<javascript:alert(1)>", "javascript:alert(1)", "[lokal](/side) [anker](#x)"],
)
def test_unsafe_or_relative_links_are_not_clickable(text: str) -> None:
    html = markdown_to_html(text)

    assert "<a" not in html
    assert "href" not in html


def test_a_link_that_is_not_made_stays_readable_in_text() -> None:
    assert markdown_to_text("[klikk](javascript:alert(1))") == "[klikk](javascript:alert(1))"


def test_headings_become_bold_paragraphs() -> None:
    html = markdown_to_html("# Tur til Sognsvann\n\nVi går fredag.\n\n## Utstyr")

    assert "<h1" not in html
    assert "<h2" not in html
    assert '<p style="margin:0 0 8px 0;font-weight:bold;">Tur til Sognsvann</p>' in html
    assert markdown_to_text("# Tur til Sognsvann\n\nVi går fredag.") == "Tur til Sognsvann\n\nVi går fredag."


def test_images_become_links_to_the_picture() -> None:
    html = markdown_to_html("![Kart over ruta](https://skole.no/kart.png) ![](https://skole.no/b.png)")

    assert "<img" not in html
    assert '<a href="https://skole.no/kart.png"' in html
    assert ">Kart over ruta</a>" in html
    assert ">https://skole.no/b.png</a>" in html
    assert (
        markdown_to_text("![Kart over ruta](https://skole.no/kart.png)") == "Kart over ruta (https://skole.no/kart.png)"
    )


def test_a_line_break_is_kept() -> None:
    assert markdown_to_html("Hei!\nVi ses.") == '<p style="margin:0 0 12px 0;">Hei!<br>\nVi ses.</p>'
    assert markdown_to_text("Hei!\nVi ses.\n\n\n\nHilsen Ola") == "Hei!\nVi ses.\n\nHilsen Ola"


def test_quotes_and_code_are_plain_in_text() -> None:
    text = "> Husk lue\n> og votter\n\n`kode` og\n\n    blokk  med   mellomrom"

    assert markdown_to_text(text) == "> Husk lue\n> og votter\n\nkode og\n\nblokk  med   mellomrom"
    assert "<pre" in markdown_to_html(text)


def test_entities_and_escapes_are_resolved_in_text() -> None:
    assert markdown_to_text(r"Tom &amp; Jerry \*ikke fet\* 5 \< 7") == "Tom & Jerry *ikke fet* 5 < 7"


def test_empty_text_gives_nothing() -> None:
    assert markdown_to_html("") == Markup("")
    assert markdown_to_html("  \n ") == Markup("")
    assert markdown_to_text("\n\n") == ""


def test_the_html_is_markup_and_the_filters_are_registered() -> None:
    assert isinstance(markdown_to_html("hei"), Markup)
    for language in ("nb", "nn", "en"):
        filters = environment_for(language).filters
        assert filters["markdown"] is markdown_to_html
        assert filters["markdown_text"] is markdown_to_text


def test_every_element_carries_an_inline_style() -> None:
    html = markdown_to_html("Avsnitt\n\n- punkt\n\n1. nummer\n\n> sitat\n\n[lenke](https://skole.no) `kode`\n\n---")

    for tag, attributes in _tags_with_attributes(html):
        if tag not in ("br",):
            assert "style" in attributes, tag


def _tags_with_attributes(html: str) -> list[tuple[str, dict[str, str | None]]]:
    found: list[tuple[str, dict[str, str | None]]] = []

    class _Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, dict(attrs)))

    collector = _Collect()
    collector.feed(html)
    collector.close()
    return found
