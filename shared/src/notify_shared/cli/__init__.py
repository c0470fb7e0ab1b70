"""`notify`: the command line for people — publish events, inspect the contract, preview notifications,
see what was delivered (`notify status`) and look at or replay dead letters (`notify dlq`).

Services are started with `faststream run <package>.app:create_app --factory`, not from here.
"""

from __future__ import annotations

from notify_shared.cli.base import app
from notify_shared.cli.dlq import dlq_app
from notify_shared.cli.retention import erase, purge
from notify_shared.cli.status import status

app.command("status")(status)
app.command("purge")(purge)
app.command("erase")(erase)
app.add_typer(dlq_app, name="dlq")


def main() -> None:
    app()


__all__ = ["app", "main"]
