"""`notify purge` and `notify erase`: the retention rules applied by hand, to one service's database.

The rules come from the ledger and from every installed service (`notify.retention` entry points); only those
whose tables this database has are applied, so the same command serves each service's database. Row counts
only: nothing personal is printed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from notify_shared.ledger.database import create_engine
from notify_shared.ledger.retention import ledger_rules
from notify_shared.retention.job import Retention, RuleCount
from notify_shared.retention.rules import installed_service_rules
from notify_shared.settings import ServiceSettings, load_settings

DatabaseUrl = Annotated[
    str, typer.Option(envvar="DATABASE_URL", help="The service's database (SQLAlchemy async URL), as it runs with.")
]


@asynccontextmanager
async def _retention(database_url: str) -> AsyncIterator[Retention]:
    # The windows are the services' own settings (RETENTION_*), read from the same environment.
    settings = load_settings(ServiceSettings)
    engine = create_engine(database_url)
    try:
        yield Retention(engine, [*ledger_rules(), *installed_service_rules()], settings.retention_windows)
    finally:
        await engine.dispose()


async def _purge(database_url: str, *, dry_run: bool) -> list[RuleCount]:
    async with _retention(database_url) as retention:
        return await retention.purge(dry_run=dry_run)


async def _erase(database_url: str, school_id: str, guardian_id: str, *, dry_run: bool) -> list[RuleCount]:
    async with _retention(database_url) as retention:
        return await retention.erase(school_id, guardian_id, dry_run=dry_run)


def _show(counts: list[RuleCount], *, title: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([{"rule": c.rule, "table": c.table, "rows": c.rows} for c in counts]))
        return
    table = Table(title=title)
    table.add_column("Rule", no_wrap=True)
    table.add_column("Table", no_wrap=True)
    table.add_column("Rows", justify="right")
    for count in counts:
        table.add_row(count.rule, count.table, str(count.rows))
    Console().print(table)


def purge(
    *,
    database_url: DatabaseUrl,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array instead of a table.")] = False,
) -> None:
    """Delete what the retention rules let go now (the services also do this every RETENTION_INTERVAL)."""
    counts = asyncio.run(_purge(database_url, dry_run=dry_run))
    _show(counts, title="Would be deleted now" if dry_run else "Deleted", as_json=as_json)


def erase(
    *,
    database_url: DatabaseUrl,
    school_id: Annotated[str, typer.Option(help="The guardian's school (guardian ids are unique within a school).")],
    guardian_id: Annotated[str, typer.Option(help="The guardian whose data is erased.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array instead of a table.")] = False,
) -> None:
    """Erase one guardian on request: every row about them, and everything still scheduled for them."""
    counts = asyncio.run(_erase(database_url, school_id, guardian_id, dry_run=dry_run))
    _show(counts, title="Would be erased" if dry_run else "Erased", as_json=as_json)
