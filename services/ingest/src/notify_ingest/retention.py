"""How long the ingest keeps its receipts of accepted events (docs/privacy.md).

A receipt holds ids, a digest of the event and where it was published: no personal data. It is what answers a
retried POST with "duplicate", so it is kept for the records window; one still being published is never touched.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from notify_ingest.store import ingested_events
from notify_shared.retention.rules import RetentionRule
from notify_shared.retention.windows import Window


def _published_before(cutoff: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(ingested_events.c.published_at.is_not(None), ingested_events.c.received_at <= cutoff)


def rules() -> list[RetentionRule]:
    return [
        RetentionRule(
            name="ingest.accepted_events",
            table=ingested_events,
            holds="Each accepted event's school, source, id, type, a SHA-256 of its content and where it went: to "
            "answer a retried POST as a duplicate and refuse the same id with other content.",
            window=Window.RECORDS,
            expired=_published_before,
        )
    ]
