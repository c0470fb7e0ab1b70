"""`notify status`: what the delivery ledger knows — counts for a time window, or everything one event caused.

Ids, channels, templates and statuses only: the ledger holds no contact details, and this prints none.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from notify_shared.cli.layout import fits, print_blocks, print_json
from notify_shared.ledger import DeliveryHistory, DeliveryLedger, StatusChange, SummaryRow

DEFAULT_WINDOW = timedelta(hours=24)


def _moment(text: str | None, option: str) -> datetime | None:
    """An ISO 8601 time; one without an offset is taken as UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 time: {text!r}", param_hint=option) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _summary_title(since: datetime, until: datetime) -> str:
    return f"Notifications created from {_time(since)} until {_time(until)}"


def summary_table(rows: list[SummaryRow], since: datetime, until: datetime) -> Table:
    table = Table(title=_summary_title(since, until))
    table.add_column("School", no_wrap=True)
    table.add_column("Channel", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Notifications", justify="right", no_wrap=True)
    for row in rows:
        table.add_row(row.school_id, row.channel, row.status.value, str(row.count))
    table.add_section()
    table.add_row("Total", "", "", str(sum(row.count for row in rows)))
    return table


def summary_document(rows: list[SummaryRow], since: datetime, until: datetime) -> dict[str, Any]:
    """`notify status --json`: the counts of the window."""
    return {
        "since": _time(since),
        "until": _time(until),
        "counts": [
            {"school_id": row.school_id, "channel": row.channel, "status": row.status.value, "count": row.count}
            for row in rows
        ],
        "total": sum(row.count for row in rows),
    }


def _step(change: StatusChange) -> str:
    return f"{_time(change.at)} {change.status.value}" + (f" ({change.reason})" if change.reason else "")


def _event_named(event_id: str, source: str | None) -> str:
    return f"event {event_id}" + (f" from {source}" if source is not None else "")


def _history_title(event_id: str, source: str | None) -> str:
    return f"Notifications caused by {_event_named(event_id, source)}"


def history_table(event_id: str, source: str | None, histories: list[DeliveryHistory]) -> Table:
    table = Table(title=_history_title(event_id, source))
    # Ids are copied into other commands and queries, and the other cells are single words: nothing wraps. When
    # that is too wide for the terminal the command prints blocks instead (see `fits`).
    for name in ("Notification", "Source", "Guardian", "Channel", "Template", "Language", "Status", "History"):
        table.add_column(name, no_wrap=True)
    for history in histories:
        delivery = history.delivery
        steps = "\n".join(_step(change) for change in history.changes)
        table.add_row(
            delivery.notification_id,
            delivery.source_event_source,
            delivery.guardian_id,
            delivery.channel,
            delivery.template,
            delivery.language or "",
            delivery.status.value,
            steps,
        )
    return table


def history_blocks(histories: list[DeliveryHistory]) -> list[list[tuple[str, str]]]:
    """One block per notification for narrow terminals and pipes: its facts, then a line per status change."""
    blocks = []
    for history in histories:
        delivery = history.delivery
        block = [
            ("notification", delivery.notification_id),
            ("source", delivery.source_event_source),
            ("guardian", delivery.guardian_id),
            ("channel", delivery.channel),
            ("template", delivery.template),
            ("language", delivery.language or ""),
            ("status", delivery.status.value),
        ]
        block.extend(("history" if index == 0 else "", _step(change)) for index, change in enumerate(history.changes))
        blocks.append(block)
    return blocks


def history_document(event_id: str, source: str | None, histories: list[DeliveryHistory]) -> dict[str, Any]:
    """`notify status --event ID --json`: every notification of the event with its status history."""
    return {
        "event_id": event_id,
        "source": source,
        "notifications": [
            {
                "notification_id": history.delivery.notification_id,
                "source": history.delivery.source_event_source,
                "guardian_id": history.delivery.guardian_id,
                "school_id": history.delivery.school_id,
                "channel": history.delivery.channel,
                "template": history.delivery.template,
                "language": history.delivery.language,
                "status": history.delivery.status.value,
                "history": [
                    {"at": _time(change.at), "status": change.status.value, "reason": change.reason}
                    for change in history.changes
                ],
            }
            for history in histories
        ],
    }


async def _summary(database_url: str, since: datetime, until: datetime) -> list[SummaryRow]:
    async with await DeliveryLedger.connect(database_url) as ledger:
        return await ledger.summary(since, until)


async def _history(database_url: str, event_id: str, source: str | None) -> list[DeliveryHistory]:
    async with await DeliveryLedger.connect(database_url) as ledger:
        return await ledger.history(event_id, source)


def _print_history(out: Console, database_url: str, event: str, source: str | None, *, as_json: bool) -> None:
    histories = asyncio.run(_history(database_url, event, source))
    if as_json:
        print_json(history_document(event, source, histories))
    elif not histories:
        out.print(f"no notifications for {_event_named(event, source)}", markup=False)
    else:
        table = history_table(event, source, histories)
        if fits(out, table):
            out.print(table)
        else:
            print_blocks(out, _history_title(event, source), history_blocks(histories))
    if not histories:
        raise typer.Exit(code=1)


def status(
    *,
    database_url: Annotated[
        str, typer.Option(envvar="DATABASE_URL", help="The delivery ledger's database (SQLAlchemy async URL).")
    ],
    since: Annotated[
        str | None, typer.Option(help="Start of the window, ISO 8601 (UTC if no offset); default 24 hours ago.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="End of the window (exclusive), ISO 8601; default now.")] = None,
    event: Annotated[
        str | None,
        typer.Option(help="Instead of counts: every notification this source event (CloudEvents id) caused."),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            help="With --event: only the event from this CloudEvents source (an id is unique only per source)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Deliveries by school, channel and status in a time window, or every notification one event caused.

    A table when the terminal is wide enough to show every id whole, else one block per notification.
    """
    out = Console()  # made here, not at import, so it takes the terminal's (or COLUMNS') width
    if source is not None and event is None:
        raise typer.BadParameter("--source narrows --event; give the event id too")
    if event is not None:
        if since is not None or until is not None:
            raise typer.BadParameter("--event shows one event's notifications; leave out --since and --until")
        _print_history(out, database_url, event, source, as_json=as_json)
        return
    end = _moment(until, "--until") or datetime.now(UTC)
    start = _moment(since, "--since") or end - DEFAULT_WINDOW
    if start >= end:
        raise typer.BadParameter("--since must come before --until")
    rows = asyncio.run(_summary(database_url, start, end))
    table = summary_table(rows, start, end)
    if as_json:
        print_json(summary_document(rows, start, end))
    elif fits(out, table):
        out.print(table)
    else:
        blocks = [
            [
                ("school", row.school_id),
                ("channel", row.channel),
                ("status", row.status.value),
                ("count", str(row.count)),
            ]
            for row in rows
        ]
        blocks.append([("total", str(sum(row.count for row in rows)))])
        print_blocks(out, _summary_title(start, end), blocks)
