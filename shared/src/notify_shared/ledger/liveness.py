"""Sender liveness: a heartbeat per running sender, so a crashed sender's claims are taken over in seconds.

A claim's lease (`DELIVERY_LEASE`, minutes) has to outlast the slowest send, so on its own it makes recovery
after `kill -9` wait that long. A sender that takes part here writes a heartbeat every few seconds and records,
next to each claim it makes, that the claim is its own (`delivery_claims`). Another sender may then take a claim
over as soon as its holder's heartbeat is older than the sender timeout: the holder is gone.

Why this never sends while a live holder may still be sending: a holder that could not write its heartbeat for
half the timeout stops starting sends (`may_send`), well before the others may take over at the full timeout.
A send already under way when the heartbeats stop (the database unreachable from this process alone, or the
process frozen) is the one case left; the timeout is set far above a normal send for that reason.

A sender that never registered (a CLI, a test, an older version) is not judged: its claims wait for the lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from notify_shared.ledger.tables import delivery_claims, delivery_senders

logger = logging.getLogger(__name__)

DEFAULT_SENDER_TIMEOUT = timedelta(seconds=20)
HEARTBEATS_PER_TIMEOUT = 10
"""Heartbeats written within one timeout: one lost write (a slow commit, a busy event loop) changes nothing."""

FORGET_SENDERS_AFTER = timedelta(days=1)
"""A dead sender's row is deleted this long after its last heartbeat; its claims have long been settled."""


def new_sender_id(name: str | None = None) -> str:
    """A sender id that names the replica (`name`, else the host) and process for operators, and is never reused
    after a restart: a restarted replica must not look alive on behalf of the process that died."""
    # Short enough for every table that records an owner (100 characters).
    return f"{(name or socket.gethostname())[:60]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class SenderLiveness:
    """This process's heartbeat in the ledger's database, and the test of other senders' heartbeats."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        sender_id: str | None = None,
        timeout: timedelta = DEFAULT_SENDER_TIMEOUT,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        # `clock` is for tests of this module: in a service it stays the wall clock even where the service's
        # own clock is simulated, since heartbeats measure real silence between real processes.
        if timeout <= timedelta(0):
            raise ValueError("the sender timeout must be positive")
        self.sender_id = sender_id or new_sender_id()
        self.timeout = timeout
        self._engine = engine
        self._clock = clock
        self._last_beat: datetime | None = None
        self._beating: asyncio.Task[None] | None = None

    @property
    def heartbeat_interval(self) -> timedelta:
        return self.timeout / HEARTBEATS_PER_TIMEOUT

    async def start(self) -> None:
        """Register this sender and keep its heartbeat fresh until `stop`."""
        async with self._engine.begin() as connection:
            now = self._now()
            await connection.execute(
                sa.delete(delivery_senders).where(delivery_senders.c.heartbeat_at < now - FORGET_SENDERS_AFTER)
            )
            await connection.execute(
                sa.insert(delivery_senders).values(sender_id=self.sender_id, started_at=now, heartbeat_at=now)
            )
        self._last_beat = now
        self._beating = asyncio.create_task(self._beat_forever(), name=f"heartbeat {self.sender_id}")

    async def stop(self) -> None:
        """Stop the heartbeat and deregister; call it once this sender has recorded every send it made."""
        if self._beating is not None:
            self._beating.cancel()
            await asyncio.gather(self._beating, return_exceptions=True)
            self._beating = None
        self._last_beat = None
        try:
            async with self._engine.begin() as connection:
                ours = delivery_senders.c.sender_id == self.sender_id
                await connection.execute(sa.delete(delivery_senders).where(ours))
        except Exception as failure:
            # Shutting down: the row then simply goes stale, as a crashed sender's would.
            logger.warning("sender %s could not deregister (%s)", self.sender_id, type(failure).__name__)

    def may_send(self) -> bool:
        """Whether this sender may start a send: its heartbeat was written well within the timeout.

        False once half the timeout has passed without a heartbeat, so this sender stops before any other could
        judge it gone.
        """
        return self._last_beat is not None and self._now() - self._last_beat < self.timeout / 2

    async def own_claims(self, connection: AsyncConnection, claims: dict[str, int]) -> None:
        """Mark `claims` (notification id → its attempts) as this sender's, in the claiming transaction."""
        if not claims:
            return
        ids = list(claims)
        await connection.execute(sa.delete(delivery_claims).where(delivery_claims.c.notification_id.in_(ids)))
        await connection.execute(
            sa.insert(delivery_claims),
            [{"notification_id": nid, "sender_id": self.sender_id, "attempts": claims[nid]} for nid in ids],
        )

    async def _beat_forever(self) -> None:
        interval = self.heartbeat_interval.total_seconds()
        failures = 0
        while True:
            await asyncio.sleep(interval)
            try:
                await self._beat()
            except Exception as failure:
                # A missed beat is survivable (may_send guards the sends); once per run of failures is enough
                # for the log, or a database outage would flood it.
                failures += 1
                if failures == 1:
                    logger.warning(
                        "heartbeat of sender %s failed (%s); sends pause if it goes on",
                        self.sender_id,
                        type(failure).__name__,
                    )
            else:
                if failures:
                    logger.info("heartbeat of sender %s written again after %d failures", self.sender_id, failures)
                failures = 0

    async def _beat(self) -> None:
        now = self._now()
        async with self._engine.begin() as connection:
            updated = await connection.execute(
                sa.update(delivery_senders)
                .where(delivery_senders.c.sender_id == self.sender_id)
                .values(heartbeat_at=now)
            )
            if updated.rowcount == 0:
                # Deleted as stale while this process was frozen: register again, under the same id.
                await connection.execute(
                    sa.insert(delivery_senders).values(sender_id=self.sender_id, started_at=now, heartbeat_at=now)
                )
        self._last_beat = now

    def silent_senders(self) -> sa.Select[tuple[str]]:
        """The registered senders whose heartbeat is older than the timeout, by this sender's clock."""
        return sa.select(delivery_senders.c.sender_id).where(
            delivery_senders.c.heartbeat_at <= self._now() - self.timeout
        )

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)


def abandoned_claim(
    notification_id: sa.ColumnElement[str], attempts: sa.ColumnElement[int], judge: SenderLiveness
) -> sa.ColumnElement[bool]:
    """True for a claim whose holder registered and then fell silent for longer than `judge`'s timeout."""
    return sa.exists().where(
        delivery_claims.c.notification_id == notification_id,
        delivery_claims.c.attempts == attempts,
        delivery_claims.c.sender_id.in_(judge.silent_senders()),
    )


def silent_owner(owner: sa.ColumnElement[str | None], judge: SenderLiveness) -> sa.ColumnElement[bool]:
    """True for a retry claimed by a registered sender that fell silent for longer than `judge`'s timeout."""
    return owner.in_(judge.silent_senders())
