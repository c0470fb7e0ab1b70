"""Reading the ledger back: one notification, everything one event caused, and counts for a time window."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from notify_shared.ledger.database import read_transaction, utc_from_db
from notify_shared.ledger.records import DeliveryHistory, DeliveryRecord, StatusChange, SummaryRow
from notify_shared.ledger.rows import as_utc, delivery_from
from notify_shared.ledger.status import DeliveryStatus
from notify_shared.ledger.tables import deliveries, delivery_status_history


class LedgerQueries:
    """Read-only questions; each runs in a read transaction that neither waits for nor blocks writers."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, notification_id: str) -> DeliveryRecord | None:
        """The notification with this id, or None if it was never claimed."""
        async with read_transaction(self._engine) as connection:
            row = (
                await connection.execute(sa.select(deliveries).where(deliveries.c.notification_id == notification_id))
            ).one_or_none()
        return None if row is None else delivery_from(row)

    async def history(self, source_event_id: str, source: str | None = None) -> list[DeliveryHistory]:
        """Every notification one source event caused, each with its status history.

        Notifications come in the order they were created (then by guardian, channel and template); each
        history in the order it was recorded. An unknown event gives an empty list.
        """
        of_event: sa.ColumnElement[bool] = deliveries.c.source_event_id == source_event_id
        if source is not None:
            of_event = sa.and_(of_event, deliveries.c.source_event_source == source)
        async with read_transaction(self._engine) as connection:
            rows = (
                await connection.execute(
                    sa.select(deliveries)
                    .where(of_event)
                    .order_by(
                        deliveries.c.created_at,
                        deliveries.c.guardian_id,
                        deliveries.c.channel,
                        deliveries.c.template,
                    )
                )
            ).all()
            change_rows = (
                await connection.execute(
                    sa.select(delivery_status_history)
                    .join(deliveries)
                    .where(of_event)
                    # The id, not `at`: it follows the order of recording even if replicas' clocks disagree.
                    .order_by(delivery_status_history.c.id)
                )
            ).all()
        changes: defaultdict[str, list[StatusChange]] = defaultdict(list)
        for change in change_rows:
            changes[change.notification_id].append(
                StatusChange(DeliveryStatus(change.status), change.reason, change.detail, utc_from_db(change.at))
            )
        return [DeliveryHistory(delivery_from(row), tuple(changes[row.notification_id])) for row in rows]

    async def summary(self, since: datetime, until: datetime) -> list[SummaryRow]:
        """Counts of notifications created in [since, until), by school, channel and current status.

        Sorted by school, channel and status (code point order). `since` and `until` must be timezone-aware.
        """
        notifications = sa.func.count().label("notifications")
        async with read_transaction(self._engine) as connection:
            rows = (
                await connection.execute(
                    sa.select(deliveries.c.school_id, deliveries.c.channel, deliveries.c.status, notifications)
                    .where(deliveries.c.created_at >= as_utc(since), deliveries.c.created_at < as_utc(until))
                    .group_by(deliveries.c.school_id, deliveries.c.channel, deliveries.c.status)
                )
            ).all()
        summary = [
            SummaryRow(row.school_id, row.channel, DeliveryStatus(row.status), row.notifications) for row in rows
        ]
        # Sorted here, not in SQL: PostgreSQL's collation and SQLite's byte order can disagree on ids.
        return sorted(summary, key=lambda row: (row.school_id, row.channel, row.status.value))
