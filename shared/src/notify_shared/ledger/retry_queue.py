"""The durable retry queue: notifications waiting for their next try after a transient provider failure.

Why a table in the ledger's database and not Kafka retry topics: a retry is a fact about one notification, not
about an event, and it must change the notification's status in the same transaction that schedules it. Here
that is one transaction: the ledger row moves to `queued` (which `DeliveryLedger.begin` no longer claims, so a
redelivered event cannot send it a second time) and the retry row holds the rendered message and its due time.
The event's offset is committed at once, so a failing provider never blocks a partition, and a restart loses
nothing. Replicas on PostgreSQL share the queue with `FOR UPDATE SKIP LOCKED`; a claim carries a lease, so the
retries of a replica that died pass on to the others.

The final status is recorded with `DeliveryLedger.record(..., release_retry=True)`, which deletes the retry row
in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from notify_shared.ledger.database import read_transaction, utc_from_db
from notify_shared.ledger.keys import DeliveryKey
from notify_shared.ledger.liveness import SenderLiveness, silent_owner
from notify_shared.ledger.status import DeliveryStatus
from notify_shared.ledger.tables import REASON_LENGTH, deliveries, delivery_retries, delivery_status_history

DEFAULT_RETRY_LEASE = timedelta(minutes=5)
"""How long a claimed retry is protected from other workers: longer than one send, with its timeouts."""


@dataclass(frozen=True)
class QueuedNotification:
    """A notification to create straight into the retry queue (the fallback on a guardian's other channel)."""

    key: DeliveryKey
    source_event_type: str
    school_id: str
    language: str | None
    job: str
    """The `DeliveryJob` as JSON, with the id `notification_id_for(key)`."""
    due_at: datetime
    reason: str

    def __post_init__(self) -> None:
        # The school is part of the key; a stored school other than the key's would file the row under another.
        if self.school_id != self.key.school_id:
            raise ValueError("QueuedNotification.school_id must be the school of its key")


@dataclass(frozen=True)
class DueRetry:
    """One retry a worker has claimed and must now try (and then record, or schedule again)."""

    notification_id: str
    attempt: int
    job: str
    due_at: datetime


class RetryQueue:
    """Schedules, claims and counts retries; shares the ledger's engine and tables."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lease: timedelta = DEFAULT_RETRY_LEASE,
        liveness: SenderLiveness | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._lease = lease
        # With it, a retry claimed by a sender that fell silent (crashed) is free at once, not after the lease.
        self._liveness = liveness

    async def schedule(self, notification_id: str, *, job: str, due_at: datetime, attempt: int, reason: str) -> None:
        """Park the notification as `queued` until `due_at`, when try number `attempt` is made with `job`.

        Called by the sender that holds the claim (a `sending` row) or the retry (a `queued` row).
        """
        now = self._now()
        reason = reason[:REASON_LENGTH]
        async with self._engine.begin() as connection:
            updated = await connection.execute(
                sa.update(deliveries)
                .where(
                    deliveries.c.notification_id == notification_id,
                    deliveries.c.status.in_([DeliveryStatus.SENDING.value, DeliveryStatus.QUEUED.value]),
                )
                .values(status=DeliveryStatus.QUEUED.value, reason=reason, detail=None, updated_at=now)
                .returning(deliveries.c.notification_id)
            )
            if updated.first() is None:
                raise LookupError(f"notification {notification_id} is not in progress; nothing to retry")
            await connection.execute(
                sa.insert(delivery_status_history).values(
                    notification_id=notification_id,
                    status=DeliveryStatus.QUEUED.value,
                    reason=reason,
                    detail=None,
                    at=now,
                )
            )
            await connection.execute(
                sa.delete(delivery_retries).where(delivery_retries.c.notification_id == notification_id)
            )
            await connection.execute(
                sa.insert(delivery_retries).values(
                    notification_id=notification_id,
                    due_at=due_at.astimezone(UTC),
                    attempt=attempt,
                    job=job,
                    claimed_by=None,
                    claimed_until=None,
                )
            )

    async def claim_due(self, *, owner: str, limit: int) -> list[DueRetry]:
        """Claim up to `limit` retries that are due (and not claimed by a live worker), earliest first."""
        now = self._now()
        free = sa.or_(delivery_retries.c.claimed_until.is_(None), delivery_retries.c.claimed_until <= now)
        if self._liveness is not None:
            free = sa.or_(free, silent_owner(delivery_retries.c.claimed_by, self._liveness))
        query = (
            sa.select(delivery_retries)
            .where(delivery_retries.c.due_at <= now, free)
            .order_by(delivery_retries.c.due_at)
            .limit(limit)
        )
        async with self._engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = (await connection.execute(query)).all()
            if not rows:
                return []
            await connection.execute(
                sa.update(delivery_retries)
                .where(delivery_retries.c.notification_id.in_([row.notification_id for row in rows]))
                .values(claimed_by=owner, claimed_until=now + self._lease)
            )
        return [DueRetry(row.notification_id, row.attempt, row.job, utc_from_db(row.due_at)) for row in rows]

    async def renew(self, notification_id: str, *, owner: str) -> bool:
        """Extend `owner`'s claim just before it sends; False when the claim has passed on (do not send)."""
        if self._liveness is not None and not self._liveness.may_send():
            return False
        now = self._now()
        async with self._engine.begin() as connection:
            renewed = await connection.execute(
                sa.update(delivery_retries)
                .where(
                    delivery_retries.c.notification_id == notification_id,
                    delivery_retries.c.claimed_by == owner,
                    delivery_retries.c.claimed_until > now,
                )
                .values(claimed_until=now + self._lease)
                .returning(delivery_retries.c.notification_id)
            )
            return renewed.first() is not None

    async def release(self, notification_id: str, *, owner: str) -> None:
        """Give a claimed retry back untried (a worker shutting down), so another can take it at once."""
        async with self._engine.begin() as connection:
            await connection.execute(
                sa.update(delivery_retries)
                .where(delivery_retries.c.notification_id == notification_id, delivery_retries.c.claimed_by == owner)
                .values(claimed_by=None, claimed_until=None)
            )

    async def next_due(self) -> datetime | None:
        """When the earliest retry can be claimed: its due time, or when a dead worker's claim runs out."""
        ready_at = sa.func.coalesce(delivery_retries.c.claimed_until, delivery_retries.c.due_at)
        async with read_transaction(self._engine) as connection:
            earliest = (await connection.execute(sa.select(sa.func.min(ready_at)))).scalar_one_or_none()
        return None if earliest is None else utc_from_db(earliest)

    async def pending(self) -> int:
        """Retries waiting or being tried, for the metrics."""
        async with read_transaction(self._engine) as connection:
            return int(
                (await connection.execute(sa.select(sa.func.count()).select_from(delivery_retries))).scalar_one()
            )

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)
