"""Claiming: new keys inserted as `sending`, abandoned claims taken over, and what everyone else is told."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from notify_shared.ledger.liveness import SenderLiveness, abandoned_claim
from notify_shared.ledger.records import Claim, ClaimRequest
from notify_shared.ledger.rows import chunks, fit, status_change
from notify_shared.ledger.status import DeliveryStatus
from notify_shared.ledger.tables import deliveries, delivery_status_history

LEASE_EXPIRED = "lease_expired"
"""History reason of a claim that took over a `sending` row whose sender went silent (most likely crashed)."""


class Claims:
    """Claims keys for one ledger; `liveness` is the ledger's sender heartbeat, when it has one."""

    def __init__(self, insert_if_new: Any, lease: timedelta) -> None:
        self._insert_if_new = insert_if_new
        self._lease = lease

    async def claim(
        self,
        connection: AsyncConnection,
        requests: dict[str, ClaimRequest],
        now: datetime,
        liveness: SenderLiveness | None,
    ) -> dict[str, Claim]:
        # Sorted: every claimer then locks rows in the same order, so overlapping batches on PostgreSQL wait
        # for each other instead of deadlocking.
        ordered_ids = sorted(requests)
        inserted = await self._insert_new(connection, [(nid, requests[nid]) for nid in ordered_ids], now)
        claims = {nid: Claim(nid, True, None, 1) for nid in inserted}
        history: list[dict[str, Any]] = [status_change(nid, DeliveryStatus.SENDING, None, now) for nid in inserted]

        existing = [nid for nid in ordered_ids if nid not in inserted]
        found = await self._states(connection, existing)
        unfinished = [nid for nid in existing if not found[nid][0].is_final]
        reclaimed = await self._reclaim(connection, unfinished, now, liveness)
        if liveness is not None:
            await liveness.own_claims(connection, {**dict.fromkeys(inserted, 1), **reclaimed})
        for nid, attempts in reclaimed.items():
            previous = found[nid][0]
            claims[nid] = Claim(nid, True, previous, attempts)
            reason = LEASE_EXPIRED if previous is DeliveryStatus.SENDING else None
            history.append(status_change(nid, DeliveryStatus.SENDING, reason, now))

        # A row we saw unfinished but could not take was claimed (or finished) by someone else meanwhile:
        # report what it is now, not what we saw.
        current = {**found, **await self._states(connection, [n for n in unfinished if n not in reclaimed])}
        for nid in existing:
            if nid not in claims:
                status, attempts = current[nid]
                claims[nid] = Claim(nid, False, status, attempts)

        if history:
            await connection.execute(sa.insert(delivery_status_history), history)
        return claims

    async def _insert_new(
        self, connection: AsyncConnection, requests: list[tuple[str, ClaimRequest]], now: datetime
    ) -> set[str]:
        rows = [
            {
                "notification_id": nid,
                "source_event_source": request.key.source,
                "source_event_id": request.key.source_event_id,
                "source_event_type": request.source_event_type,
                "school_id": request.school_id,
                "guardian_id": request.key.guardian_id,
                "channel": str(request.key.channel),
                "template": request.key.template,
                "language": fit("language", request.language),
                "status": DeliveryStatus.SENDING.value,
                "attempts": 1,
                "created_at": now,
                "updated_at": now,
            }
            for nid, request in requests
        ]
        inserted: set[str] = set()
        for chunk in chunks(rows):
            # RETURNING gives only the rows this statement inserted; a key held by someone else gives nothing.
            result = await connection.execute(self._insert_if_new.values(chunk).returning(deliveries.c.notification_id))
            inserted.update(result.scalars())
        return inserted

    async def _states(self, connection: AsyncConnection, ids: list[str]) -> dict[str, tuple[DeliveryStatus, int]]:
        states: dict[str, tuple[DeliveryStatus, int]] = {}
        for chunk in chunks(ids):
            result = await connection.execute(
                sa.select(deliveries.c.notification_id, deliveries.c.status, deliveries.c.attempts).where(
                    deliveries.c.notification_id.in_(chunk)
                )
            )
            states.update({row.notification_id: (DeliveryStatus(row.status), row.attempts) for row in result})
        return states

    async def _reclaim(
        self, connection: AsyncConnection, ids: list[str], now: datetime, liveness: SenderLiveness | None
    ) -> dict[str, int]:
        # One conditional UPDATE is the claim: a row another sender took since we read it no longer matches
        # (on PostgreSQL the second UPDATE waits for the first, then re-checks the condition on the new row).
        stale_before = now - self._lease
        gone: sa.ColumnElement[bool] = sa.false()
        if liveness is not None:
            # The holder fell silent: it crashed, so nothing of this claim is being sent any more.
            gone = abandoned_claim(deliveries.c.notification_id, deliveries.c.attempts, liveness)
        claimable = sa.and_(
            deliveries.c.status == DeliveryStatus.SENDING.value, sa.or_(deliveries.c.updated_at <= stale_before, gone)
        )
        reclaimed: dict[str, int] = {}
        for chunk in chunks(ids):
            result = await connection.execute(
                sa.update(deliveries)
                .where(deliveries.c.notification_id.in_(chunk), claimable)
                .values(
                    status=DeliveryStatus.SENDING.value,
                    reason=None,
                    detail=None,
                    attempts=deliveries.c.attempts + 1,
                    updated_at=now,
                )
                .returning(deliveries.c.notification_id, deliveries.c.attempts)
            )
            reclaimed.update({row.notification_id: row.attempts for row in result})
        return reclaimed
