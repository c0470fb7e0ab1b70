"""`notify status`: what the delivery ledger knows — counts for a time window, or everything one event caused.

Ids, channels, templates and statuses only: the ledger holds no contact details, and this prints none.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from notify_shared.ledger import DeliveryHistory, DeliveryLedger, SummaryRow

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


def summary_table(rows: list[SummaryRow], since: datetime, until: datetime) -> Table:
    table = Table(title=f"Notifications created from {_time(since)} until {_time(until)}")
    table.add_column("School")
    table.add_column("Channel")
    table.add_column("Status")
    table.add_column("Notifications", justify="right")
    for row in rows:
        table.add_row(row.school_id, row.channel, row.status.value, str(row.count))
    table.add_section()
    table.add_row("Total", "", "", str(sum(row.count for row in rows)))
    return table


def history_table(event_id: str, histories: list[DeliveryHistory]) -> Table:
    table = Table(title=f"Notifications caused by event {event_id}")
    for name in ("Notification", "Guardian", "Channel", "Template", "Language", "Status"):
        table.add_column(name, overflow="fold")
    table.add_column("History", no_wrap=True)
    for history in histories:
        delivery = history.delivery
        steps = "\n".join(
            f"{_time(change.at)} {change.status.value}" + (f" ({change.reason})" if change.reason else "")
            for change in history.changes
        )
        table.add_row(
            delivery.notification_id,
            delivery.guardian_id,
            delivery.channel,
            delivery.template,
            delivery.language or "",
            delivery.status.value,
            steps,
        )
    return table


async def _summary(database_url: str, since: datetime, until: datetime) -> list[SummaryRow]:
    async with await DeliveryLedger.connect(database_url) as ledger:
        return await ledger.summary(since, until)


async def _history(database_url: str, event_id: str) -> list[DeliveryHistory]:
    async with await DeliveryLedger.connect(database_url) as ledger:
        return await ledger.history(event_id)


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
) -> None:
    """Deliveries by school, channel and status in a time window, or every notification one event caused."""
    out = Console()  # made here, not at import, so it takes the terminal's (or COLUMNS') width
    if event is not None:
        if since is not None or until is not None:
            raise typer.BadParameter("--event shows one event's notifications; leave out --since and --until")
        histories = asyncio.run(_history(database_url, event))
        if not histories:
            out.print(f"no notifications for event {event}")
            raise typer.Exit(code=1)
        out.print(history_table(event, histories))
        return
    end = _moment(until, "--until") or datetime.now(UTC)
    start = _moment(since, "--since") or end - DEFAULT_WINDOW
    if start >= end:
        raise typer.BadParameter("--since must come before --until")
    out.print(summary_table(asyncio.run(_summary(database_url, start, end)), start, end))
