"""Recording outcomes: a group commit's statuses written with a few statements for all of them, and the
fallback notification created in the same transaction as the failure it replaces."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from notify_shared.ledger.keys import notification_id_for
from notify_shared.ledger.records import UnknownNotificationError
from notify_shared.ledger.retry_queue import QueuedNotification
from notify_shared.ledger.rows import as_utc, fit, status_change
from notify_shared.ledger.status import IN_PROGRESS_STATUSES, DeliveryStatus
from notify_shared.ledger.tables import deliveries, delivery_retries, delivery_status_history


@dataclass(frozen=True)
class RecordRequest:
    """One `record_and_queue` call, waiting for its transaction."""

    notification_id: str
    status: DeliveryStatus
    reason: str | None
    detail: str | None
    kept_when_none: dict[str, Any]
    release_retry: bool
    only_in_progress: bool
    then_queue: QueuedNotification | None
    at: datetime


class Outcomes:
    """Applies `RecordRequest`s inside the transaction a group commit gives them."""

    def __init__(self, insert_if_new: Any) -> None:
        self._insert_if_new = insert_if_new

    async def apply(
        self, connection: AsyncConnection, requests: Sequence[RecordRequest]
    ) -> list[tuple[bool, bool] | Exception]:
        """Record a group commit's outcomes with a few statements for all of them, not a few per outcome: on SQLite
        every statement is a round trip to aiosqlite's thread, and while they run, emails the SMTP server has
        accepted wait unrecorded (the window in which a kill -9 makes a resend)."""
        ids = [request.notification_id for request in requests]
        if len(set(ids)) < len(ids):
            # The same notification twice in one transaction (two callers racing): in rounds without repeats, in
            # the order they came, so the later outcome sees the earlier one as separate calls would.
            return [
                outcome for round_ in _without_repeats(requests) for outcome in await self.apply(connection, round_)
            ]
        # Locked on PostgreSQL, so no other replica changes a status between this read and the updates below; on
        # SQLite the transaction holds the write lock already.
        found = {
            row.notification_id: DeliveryStatus(row.status)
            for row in await connection.execute(
                sa.select(deliveries.c.notification_id, deliveries.c.status)
                .where(deliveries.c.notification_id.in_(ids))
                .with_for_update()
            )
        }
        outcomes: list[tuple[bool, bool] | Exception] = []
        applying: list[int] = []
        for index, request in enumerate(requests):
            status = found.get(request.notification_id)
            if status is None:
                outcomes.append(UnknownNotificationError(request.notification_id))
            elif request.only_in_progress and status not in IN_PROGRESS_STATUSES:
                outcomes.append((False, False))  # another sender's claim settled it; keep what it recorded
            else:
                outcomes.append((True, False))
                applying.append(index)
        if not applying:
            return outcomes
        applied = [requests[index] for index in applying]
        # One UPDATE per shape of values (which optional columns are set), each run for all its rows at once.
        updates: dict[tuple[bool, tuple[str, ...]], list[dict[str, Any]]] = defaultdict(list)
        for request in applied:
            values = _record_values(request)
            shape = (request.status is DeliveryStatus.SENDING, tuple(sorted(values)))
            updates[shape].append(
                {"b_notification_id": request.notification_id} | {f"b_{name}": value for name, value in values.items()}
            )
        for (counts_attempt, names), rows in updates.items():
            assignments: dict[Any, Any] = {name: sa.bindparam(f"b_{name}") for name in names}
            if counts_attempt:
                assignments["attempts"] = deliveries.c.attempts + 1
            matching = deliveries.c.notification_id == sa.bindparam("b_notification_id")
            await connection.execute(sa.update(deliveries).where(matching).values(assignments), rows)
        history = [status_change(r.notification_id, r.status, r.reason, r.at, detail=r.detail) for r in applied]
        await connection.execute(sa.insert(delivery_status_history), history)
        released = [request.notification_id for request in applied if request.release_retry]
        if released:
            retries_of_released = delivery_retries.c.notification_id.in_(released)
            await connection.execute(sa.delete(delivery_retries).where(retries_of_released))
        for index in applying:
            fallback = requests[index].then_queue
            if fallback is not None:
                outcomes[index] = (True, await self._queue_new(connection, fallback, requests[index].at))
        return outcomes

    async def _queue_new(self, connection: AsyncConnection, queued: QueuedNotification, now: datetime) -> bool:
        notification_id = notification_id_for(queued.key)
        row = {
            "notification_id": notification_id,
            "source_event_source": queued.key.source,
            "source_event_id": queued.key.source_event_id,
            "source_event_type": queued.source_event_type,
            "school_id": queued.school_id,
            "guardian_id": queued.key.guardian_id,
            "channel": str(queued.key.channel),
            "template": queued.key.template,
            "language": fit("language", queued.language),
            "status": DeliveryStatus.QUEUED.value,
            "reason": fit("reason", queued.reason),
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        inserted = await connection.execute(self._insert_if_new.values([row]).returning(deliveries.c.notification_id))
        if inserted.first() is None:
            return False  # that channel already carries (or carried) this notification
        await connection.execute(
            sa.insert(delivery_status_history).values(
                status_change(notification_id, DeliveryStatus.QUEUED, queued.reason, now)
            )
        )
        await connection.execute(
            sa.insert(delivery_retries).values(
                notification_id=notification_id,
                due_at=as_utc(queued.due_at),
                attempt=1,
                job=queued.job,
                claimed_by=None,
                claimed_until=None,
            )
        )
        return True


def _record_values(request: RecordRequest) -> dict[str, Any]:
    """The columns a recorded outcome sets; provider, message id, segments and language only when given."""
    values: dict[str, Any] = {
        "status": request.status.value,
        "reason": request.reason,
        "detail": request.detail,
        "updated_at": request.at,
    }
    values.update({name: value for name, value in request.kept_when_none.items() if value is not None})
    return values


def _without_repeats(requests: Sequence[RecordRequest]) -> list[list[RecordRequest]]:
    """`requests` cut, in order, into runs in which no notification comes twice."""
    rounds: list[list[RecordRequest]] = [[]]
    seen: set[str] = set()
    for request in requests:
        if request.notification_id in seen:
            rounds.append([])
            seen.clear()
        rounds[-1].append(request)
        seen.add(request.notification_id)
    return rounds
