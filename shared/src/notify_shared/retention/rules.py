"""What each table may keep, and for how long: the rules the retention job and `notify purge` / `notify erase` apply.

Two windows, both settings (docs/privacy.md):
- `personal_data` for what names or reaches a person, or says something about a child (contact details,
  rendered messages, meeting agendas, absence notices): it goes this long after it stopped being needed (the
  notification is final, the meeting is over);
- `records` for ids, statuses and timings, kept longer so operators can answer "what reached whom, when".

A rule names only rows nothing needs any more: a pending reminder, an open digest or a queued retry never match.
Each service lists its own rules (its `retention` module, registered under the `notify.retention` entry point so
the CLI finds them without importing the services); the ledger's are in `notify_shared.ledger.retention`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import entry_points

import sqlalchemy as sa

from notify_shared.retention.windows import Window

ENTRY_POINT_GROUP = "notify.retention"
"""Each service registers a function returning its `RetentionRule`s under this entry point group."""


@dataclass(frozen=True)
class RetentionRule:
    """Rows of one table that may be deleted, and the rows of one guardian for an erasure request."""

    name: str
    """Stable and short, e.g. `reminders.after_meeting`: a metric label and a line of `notify purge`."""
    table: sa.Table
    holds: str
    """What the rows hold and why they are kept until then, for docs/privacy.md and the CLI."""
    window: Window
    expired: Callable[[datetime], sa.ColumnElement[bool]]
    """Given the cutoff (now minus the rule's window), the rows that may go."""
    of_guardian: Callable[[str, str], sa.ColumnElement[bool]] | None = None
    """Given a school id and a guardian id, that guardian's rows (None: the table holds no per-guardian rows)."""


RulesFactory = Callable[[], Iterable[RetentionRule]]


def rows_of_guardian(table: sa.Table) -> Callable[[str, str], sa.ColumnElement[bool]]:
    """`RetentionRule.of_guardian` for a table with `school_id` and `guardian_id` columns."""

    def of_guardian(school_id: str, guardian_id: str) -> sa.ColumnElement[bool]:
        return sa.and_(table.c.school_id == school_id, table.c.guardian_id == guardian_id)

    return of_guardian


def installed_service_rules() -> list[RetentionRule]:
    """The rules every installed service registered (`notify.retention` entry points), by service name."""
    rules: list[RetentionRule] = []
    for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda point: point.name):
        factory: RulesFactory = entry_point.load()
        rules.extend(factory())
    return rules
