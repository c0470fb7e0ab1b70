"""How the `notify` commands lay out what they print: a table where it fits, one block per row where it does not,
JSON for scripts, and text from records made safe for a terminal.

Ids are copied from this output into the next command (`notify dlq show 0:12`, `notify status --event …`), so
they are never wrapped or cut: a table whose id columns do not fit the width (80 columns, or any pipe without
`COLUMNS`) gives way to blocks of `label  value` lines.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

_UNBOUNDED = 100_000


def fits(console: Console, table: Table) -> bool:
    """Whether `table` fits the console's width with every cell on one line.

    Rich would otherwise squeeze a table into any width, cutting ids to `29d0ecb0…` and short words to `…`.
    """
    unbounded = console.options.update(max_width=_UNBOUNDED)
    return Measurement.get(console, unbounded, table).maximum <= console.width


def print_blocks(console: Console, title: str, blocks: Sequence[Sequence[tuple[str, str]]]) -> None:
    """`title`, then each block as aligned `label  value` lines, blocks separated by a blank line.

    Values are printed as they are (no markup, no highlighting, no wrapping): pass them through `printable`
    first when they come from a record.
    """
    console.print(title, markup=False, highlight=False)
    width = max((len(label) for block in blocks for label, _ in block), default=0)
    for block in blocks:
        console.print()
        for label, value in block:
            console.print(f"{label.ljust(width)}  {value}", markup=False, highlight=False, soft_wrap=True)


def print_json(document: Any) -> None:
    """`document` as indented JSON on stdout; non-ASCII and control characters escaped, so it is safe anywhere."""
    print(json.dumps(document, indent=2, ensure_ascii=True))


def printable(text: str, *, keep_line_breaks: bool = False) -> str:
    """`text` with every character a terminal would act on instead of showing (escape sequences, carriage
    returns, bidirectional overrides, other control and format characters) written as a Python escape, e.g.
    `\\x1b`; tabs and line breaks are kept when `keep_line_breaks` is set.

    Dead letters carry whatever a producer sent: printed raw, `ESC ] 52` could set the operator's clipboard,
    `ESC [ 2 J` clear the screen, and `\\r` or U+202E hide text behind other text.
    """
    kept = "\n\t" if keep_line_breaks else ""
    return "".join(
        character if character.isprintable() or character in kept else _escaped(character) for character in text
    )


def _escaped(character: str) -> str:
    code = ord(character)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
