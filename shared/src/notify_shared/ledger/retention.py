"""How long the delivery ledger keeps its rows (docs/privacy.md).

The ledger holds ids, statuses and timings, no contact details or message bodies, except the rendered message
of a notification waiting in the retry queue, which is deleted in the transaction that makes it final. So its
rows fall under the longer `records` window, counted from the notification's last change; a notification still
in progress never matches. Deleting a row takes its history, retry and claim rows with it (ON DELETE CASCADE).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from notify_shared.ledger.status import FINAL_STATUSES
from notify_shared.ledger.tables import deliveries
from notify_shared.retention.rules import RetentionRule, rows_of_guardian
from notify_shared.retention.windows import Window


def _final_before(cutoff: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        deliveries.c.status.in_([status.value for status in FINAL_STATUSES]), deliveries.c.updated_at <= cutoff
    )


def ledger_rules() -> list[RetentionRule]:
    return [
        RetentionRule(
            name="ledger.deliveries",
            table=deliveries,
            holds="Each notification's ids, channel, template, status history and provider reference: what reached "
            "whom and when, for operators and the school's questions. No contact details or message text.",
            window=Window.RECORDS,
            expired=_final_before,
            of_guardian=rows_of_guardian(deliveries),
        )
    ]
