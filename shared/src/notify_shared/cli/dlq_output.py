"""What `notify dlq list` and `notify dlq show` print: a table, blocks or JSON for the list, one dead letter in
full for show. Every string that comes from a record is passed through `printable` before it reaches a terminal.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from notify_shared.cli.layout import fits, print_blocks, printable

if TYPE_CHECKING:
    from notify_shared.cli.dlq import DeadLetterRecord

_FIRST_ERROR_LENGTH = 80


def letter_time(letter: DeadLetterRecord) -> str:
    moment = (
        letter.event.data.dead_lettered_at
        if letter.event is not None
        else datetime.fromtimestamp(letter.timestamp_ms / 1000, UTC)
    )
    return _utc(moment)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _first_error(errors: Sequence[str]) -> str:
    if not errors:
        return ""
    first = printable(errors[0])
    return first if len(first) <= _FIRST_ERROR_LENGTH else first[: _FIRST_ERROR_LENGTH - 1] + "…"


def _summary(letter: DeadLetterRecord) -> dict[str, str]:
    """The facts of one dead letter that the list shows, as printable text."""
    if letter.event is None:
        return {"position": letter.position, "time": letter_time(letter), "reason": f"unreadable: {letter.problem}"}
    data = letter.event.data
    return {
        "position": letter.position,
        "time": letter_time(letter),
        "service": printable(data.service),
        "reason": printable(data.reason),
        "original": printable(f"{data.original_topic}/{data.original_partition}/{data.original_offset}"),
        "source event": printable(data.source_event_id or ""),
        "first error": _first_error(data.errors),
    }


def list_table(letters: Sequence[DeadLetterRecord], topic: str) -> Table:
    table = Table(title=f"Dead letters on {topic}")
    # no_wrap on what an operator copies into the next command (`notify dlq show`, `notify status --event`).
    table.add_column("Offset", no_wrap=True)
    table.add_column("Time", no_wrap=True)
    table.add_column("Service", no_wrap=True)
    table.add_column("Reason", no_wrap=True)
    table.add_column("Original", no_wrap=True)
    table.add_column("Source event", no_wrap=True)
    table.add_column("First error", no_wrap=True)
    for letter in letters:
        facts = _summary(letter)
        table.add_row(
            *(
                facts.get(name, "")
                for name in ("position", "time", "service", "reason", "original", "source event", "first error")
            )
        )
    return table


def print_list(out: Console, letters: Sequence[DeadLetterRecord], topic: str) -> None:
    """The table when it fits the width without wrapping an id, else one block per dead letter."""
    table = list_table(letters, topic)
    if fits(out, table):
        out.print(table)
        return
    blocks = [[(label, value) for label, value in _summary(letter).items() if value] for letter in letters]
    print_blocks(out, f"Dead letters on {topic}", blocks)


def list_document(letters: Sequence[DeadLetterRecord], topic: str, total: int) -> dict[str, Any]:
    """`notify dlq list --json`: where each dead letter came from and why; never the original value."""
    return {
        "topic": topic,
        "total": total,
        "dead_letters": [_as_json(letter) for letter in letters],
    }


def _as_json(letter: DeadLetterRecord) -> dict[str, Any]:
    base: dict[str, Any] = {
        "position": letter.position,
        "partition": letter.partition,
        "offset": letter.offset,
        "time": letter_time(letter),
    }
    if letter.event is None:
        return {**base, "readable": False, "problem": letter.problem}
    data = letter.event.data
    return {
        **base,
        "readable": True,
        "id": letter.event.id,
        "service": data.service,
        "reason": data.reason,
        "original_topic": data.original_topic,
        "original_partition": data.original_partition,
        "original_offset": data.original_offset,
        "source_event_id": data.source_event_id,
        "errors": list(data.errors),
    }


def _readable(raw: bytes, *, keep_line_breaks: bool = False) -> str:
    """UTF-8 text, made printable, when it is; else base64 (marked as such)."""
    try:
        return printable(raw.decode("utf-8"), keep_line_breaks=keep_line_breaks)
    except UnicodeDecodeError:
        return f"(base64) {base64.b64encode(raw).decode('ascii')}"


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def print_letter(out: Console, letter: DeadLetterRecord) -> None:
    """One dead letter in full: errors, headers, key and the original value (which may hold personal data)."""
    out.rule(f"dead letter {letter.position}")
    if letter.event is None:
        out.print(f"unreadable record: {printable(str(letter.problem))}", markup=False)
        return
    data = letter.event.data
    lines = [
        f"dead-letter event id: {printable(letter.event.id)}",
        f"dead-lettered at:     {letter_time(letter)} by {printable(data.service)}",
        f"reason:               {printable(data.reason)}",
        f"source event id:      {printable(data.source_event_id or '(unreadable)')}",
        f"original:             {printable(data.original_topic)} partition {data.original_partition} "
        f"offset {data.original_offset}",
    ]
    if data.original_timestamp_ms is not None:
        lines.append(f"original time:        {_utc(datetime.fromtimestamp(data.original_timestamp_ms / 1000, UTC))}")
    lines.append("errors:")
    lines.extend(f"  - {printable(error)}" for error in data.errors or ("(none)",))
    lines.append("headers:")
    lines.extend(
        f"  {printable(header.key)}: {_readable(_b64decode(header.value_base64))}" for header in data.original_headers
    )
    if data.original_key_base64 is not None:
        lines.append(f"key: {_readable(_b64decode(data.original_key_base64))}")
    lines.append("value (may contain personal data):")
    # Line breaks kept in the value only: a pretty-printed JSON body stays readable, while a header or key can
    # never fake a line of its own.
    lines.append(_readable(_b64decode(data.original_value_base64), keep_line_breaks=True))
    # markup=False and highlight=False: these strings come from the record, not from us.
    out.print("\n".join(lines), markup=False, highlight=False)
