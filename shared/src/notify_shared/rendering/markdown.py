"""Teachers' messages, meeting agendas and cancellation notes are Markdown: made safe HTML for the e-mail, and
readable plain text for the text part, the SMS and the calendar entry.

What a teacher types is data. It is parsed as Markdown here and never compiled as a template, so `{{ 7*7 }}`
or `{% for %}` is shown as typed. Raw HTML is switched off in the parser (`html=False`): `<script>`,
`<img onerror=…>` or `<a href=…>` in a message come out as visible, escaped text. Links are made only for
`http`, `https` and `mailto` (`_SafeMarkdown.validateLink`); anything else, `javascript:` included, stays
plain text. Bare addresses (`https://…`, `www.…`, `ola@skole.no`) become links, as parents expect.

Only what reads well in every mail client is kept: paragraphs, line breaks, bold and italics, bullet and
numbered lists, links, quotes and code. Headings become bold paragraphs (a teacher's `# Tur` should not
shout in 32px); images become a link to the picture (mail clients block remote images, and a tracking pixel
or a huge picture in a school message helps nobody). Every element gets inline styles, because many clients
drop `<style>` blocks.

Links get `rel="noopener noreferrer"`, and `target="_blank"` for web links. Desktop and phone mail apps
ignore both and open the system browser; webmail that does not rewrite links itself would otherwise replace
the mailbox with the linked page. `rel` keeps the opened page from reaching back to the webmail tab
(`window.opener`) and from learning the webmail address from the referrer. `mailto:` links get no target: a
new tab for a mail draft is only an empty tab.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup, escape

SAFE_SCHEMES: Final = ("http:", "https:", "mailto:")
"""The only link targets a message may have. Relative links mean nothing in an e-mail."""

_WEB_SCHEMES: Final = ("http:", "https:")

# Inline styles: they match _layout.html (16px Arial, line height 1.5) and survive Gmail and Outlook.
# A quote's bar goes on the side the text starts from. The message block has dir="auto" (its direction is the
# teacher's text's, not the e-mail's), so only the logical properties know that side; clients without them
# keep the left bar, and where they exist `border-inline-end:0` takes the left bar away again in Arabic text.
_QUOTE_BAR: Final = "border-left:3px solid #d1d5db;border-inline-start:3px solid #d1d5db;border-inline-end:0;"
_STYLES: Final[dict[str, str]] = {
    "paragraph_open": "margin:0 0 12px 0;",
    "heading_open": "margin:0 0 8px 0;font-weight:bold;",
    "bullet_list_open": "margin:0 0 12px 0;",
    "ordered_list_open": "margin:0 0 12px 0;",
    "list_item_open": "margin:0 0 4px 0;",
    "blockquote_open": f"margin:0 0 12px 0;padding:0 12px;{_QUOTE_BAR}color:#4b5563;",
    "code_inline": "font-family:Consolas,Menlo,monospace;font-size:14px;background-color:#f3f4f6;",
    "hr": "border:0;border-top:1px solid #d1d5db;margin:16px 0;",
}
_LINK_STYLE: Final = "color:#1d4ed8;text-decoration:underline;"
_PRE_STYLE: Final = (
    "margin:0 0 12px 0;padding:8px 12px;background-color:#f3f4f6;border-radius:4px;"
    "font-family:Consolas,Menlo,monospace;font-size:14px;white-space:pre-wrap;word-wrap:break-word;"
)

# Letters, digits and + . - before a colon: a URL scheme. Control characters and spaces are never in one.
_SCHEME: Final = re.compile(r"^[a-z][a-z0-9+.\-]*:", re.IGNORECASE)


def is_safe_link(url: str) -> bool:
    """Whether `url` may be a link target: `http:`, `https:` or `mailto:`, whatever its case."""
    match = _SCHEME.match(url.strip())
    return match is not None and match.group(0).lower() in SAFE_SCHEMES


class _SafeMarkdown(MarkdownIt):
    def validateLink(self, url: str) -> bool:  # noqa: N802 - overrides markdown-it's own name
        # markdown-it calls this with the normalised (percent-encoded, entity-decoded) target of every link,
        # autolink, linkified address and image; a link it refuses stays plain text.
        return is_safe_link(url)


def _email_attributes(state: StateCore) -> None:
    # A core rule, run after linkify: inline styles on every block, headings as bold paragraphs, and
    # rel/target on links.
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = "p"
        if token.type in _STYLES and not token.hidden:
            token.attrSet("style", _STYLES[token.type])
        for child in token.children or ():
            if child.type == "code_inline":
                child.attrSet("style", _STYLES["code_inline"])
            elif child.type == "link_open":
                child.attrSet("style", _LINK_STYLE)
                child.attrSet("rel", "noopener noreferrer")
                if str(child.attrGet("href") or "").lower().startswith(_WEB_SCHEMES):
                    child.attrSet("target", "_blank")


def _alt_text(image: Token) -> str:
    # The words of an image's description, without markup ("![**kart** over ruta](…)" gives "kart over ruta").
    words = [
        " " if child.type in ("softbreak", "hardbreak") else child.content
        for child in image.children or ()
        if child.type in ("text", "code_inline", "softbreak", "hardbreak", "image")
    ]
    return "".join(words).strip()


def _render_image(
    renderer: RendererHTML, tokens: Sequence[Token], index: int, options: OptionsDict, env: EnvType
) -> str:
    # A picture becomes a link to it, named by its alt text; it is never loaded into the e-mail.
    token = tokens[index]
    alt = _alt_text(token)
    src = str(token.attrGet("src") or "")
    if not is_safe_link(src):  # pragma: no cover - validateLink already refused it
        return str(escape(alt))
    target = ' target="_blank"' if src.lower().startswith(_WEB_SCHEMES) else ""
    return (
        f'<a href="{escape(src)}" rel="noopener noreferrer"{target} style="{_LINK_STYLE}">'
        f"{escape(alt or _parser().normalizeLinkText(src))}</a>"
    )


def _render_code_block(
    renderer: RendererHTML, tokens: Sequence[Token], index: int, options: OptionsDict, env: EnvType
) -> str:
    return f'<pre style="{_PRE_STYLE}">{escape(tokens[index].content.rstrip())}</pre>\n'


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    parser = _SafeMarkdown(
        "commonmark",
        # breaks: a single newline is a line break. Teachers type in a text box and expect their lines kept.
        # xhtmlOut off: `<br>`, as in the rest of the e-mail.
        {"html": False, "linkify": True, "breaks": True, "xhtmlOut": False, "typographer": False},
    )
    parser.enable("linkify")
    parser.core.ruler.push("email_attributes", _email_attributes)
    parser.add_render_rule("image", _render_image)
    parser.add_render_rule("code_block", _render_code_block)
    parser.add_render_rule("fence", _render_code_block)
    return parser


@lru_cache(maxsize=256)
def markdown_to_html(text: str) -> Markup:
    """A message as safe, inline-styled HTML for the e-mail body; empty text gives empty markup.

    One message goes to every guardian of a class, so the result is cached per text.
    """
    if not text or not text.strip():
        return Markup("")
    # Escaped by markdown-it itself: html=False turns raw HTML into text, and attribute values are escaped.
    return Markup(_parser().render(text).strip())  # noqa: S704 - markdown-it output, raw HTML disabled


@dataclass
class _Item:
    marker: str
    used: bool = False


@dataclass
class _TextWriter:
    """Block tokens to plain text: one list item per line with "- " or "1. ", quotes with "> "."""

    parser: MarkdownIt
    text: str = ""
    lists: list[list[int]] = field(default_factory=list)
    """Per open list: [next number], or [] for a bullet list (a list, so the counter can be updated)."""
    items: list[_Item] = field(default_factory=list)
    quote_depth: int = 0
    hidden: bool = False
    """The current paragraph is hidden: it is the text of a tight list's item, one line per item."""
    list_starts: bool = False

    def write(self, tokens: Sequence[Token]) -> str:
        for token in tokens:
            self._block(token)
        return self.text

    def _block(self, token: Token) -> None:
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            # A list inside a tight item follows on the next line; any other list after a blank one.
            self.list_starts = not (self.items and self.hidden)
            self.lists.append([int(token.attrGet("start") or 1)] if kind == "ordered_list_open" else [])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.lists.pop()
        elif kind == "list_item_open":
            counter = self.lists[-1]
            marker = f"{counter[0]}. " if counter else "- "
            if counter:
                counter[0] += 1
            self.items.append(_Item(marker))
        elif kind == "list_item_close":
            if not self.items[-1].used:  # an empty item is still a line with its marker
                self._emit("", tight=not self.list_starts)
            self.items.pop()
        elif kind == "blockquote_open":
            self.quote_depth += 1
        elif kind == "blockquote_close":
            self.quote_depth -= 1
        elif kind == "paragraph_open":
            self.hidden = token.hidden
        elif kind == "inline":
            self._emit(self._inline(token.children or []), tight=self.hidden and not self.list_starts)
        elif kind in ("code_block", "fence"):
            self._emit(token.content.rstrip("\n"), tight=False)
        elif kind == "hr":
            self._emit("---", tight=False)

    def _emit(self, block: str, *, tight: bool) -> None:
        lines = []
        for number, line in enumerate(block.split("\n")):
            prefix = ""
            for depth, item in enumerate(self.items):
                starts_item = depth == len(self.items) - 1 and number == 0 and not item.used
                prefix += item.marker if starts_item else " " * len(item.marker)
            lines.append(("> " * self.quote_depth) + prefix + line)
        for item in self.items:
            item.used = True
        if self.text:
            self.text += "\n" if tight else "\n\n"
        self.text += "\n".join(lines)
        self.list_starts = False

    def _inline(self, children: Sequence[Token]) -> str:
        out: list[str] = []
        links: list[tuple[int, str, bool]] = []
        for child in children:
            kind = child.type
            if kind in ("text", "code_inline"):
                out.append(child.content)
            elif kind in ("softbreak", "hardbreak"):
                out.append("\n")
            elif kind == "link_open":
                automatic = child.markup in ("linkify", "autolink")
                links.append((len(out), str(child.attrGet("href") or ""), automatic))
            elif kind == "link_close" and links:
                start, href, automatic = links.pop()
                label = "".join(out[start:]).strip()
                shown = self.parser.normalizeLinkText(href).removeprefix("mailto:")
                if not label:
                    out.append(shown)
                elif not automatic and label not in (shown, href):
                    out.append(f" ({shown})")
            elif kind == "image":
                alt = _alt_text(child)
                shown = self.parser.normalizeLinkText(str(child.attrGet("src") or ""))
                out.append(f"{alt} ({shown})" if alt else shown)
            # Emphasis markers (em and strong) are left out: the words are what matter.
        return "".join(out)


@lru_cache(maxsize=256)
def markdown_to_text(text: str) -> str:
    """A message as readable plain text, for the text e-mail and the SMS.

    Emphasis markers go, list items keep "- " or their number, a link reads "text (url)" (a bare address just
    once), a picture "alt text (url)"; the teacher's line breaks stay. Markdown's backslash escapes and
    HTML entities are resolved, so `\\*` reads `*` and `&amp;` reads `&`.
    """
    if not text or not text.strip():
        return ""
    parser = _parser()
    return _TextWriter(parser).write(parser.parse(text)).strip()
