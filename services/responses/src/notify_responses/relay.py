"""The outbox relay: publishes the `meeting.rsvp` events the answers left in the outbox, in order, until Kafka has
each one, then marks it published.

An answer and its event are written in one transaction (`ResponseStore.record_answer`), so a broker that is
away loses nothing: the events wait in the database and leave when it is back, oldest first. An event is marked
published only after Kafka confirmed it (acks=all); a crash between the two publishes it again with the same
CloudEvents id, which consumers deduplicate (the same at-least-once as every other service's events).

With several replicas on one database only the relay holding the outbox lease publishes
(`notify_responses.relay_lease`), so an event is not published by two replicas at once and one meeting's answers
leave in the order they were given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from notify_responses.relay_lease import RelayLease
from notify_responses.store import OutboxEvent, ResponseStore

logger = logging.getLogger(__name__)

Publish = Callable[[OutboxEvent], Awaitable[None]]
"""Publishes one event to Kafka and returns once Kafka has it; raises if Kafka refuses it."""

BATCH = 100
"""Events read from the outbox per round."""


class OutboxRelay:
    """One loop per replica; with a `lease`, only the replica holding it publishes (see the module docstring)."""

    def __init__(
        self,
        store: ResponseStore,
        publish: Publish,
        *,
        poll_interval_seconds: float,
        retry_max_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_published: Callable[[OutboxEvent], None] = lambda event: None,
        lease: RelayLease | None = None,
    ) -> None:
        self._store = store
        self._publish = publish
        self._poll = poll_interval_seconds
        self._retry_max = retry_max_seconds
        self._clock = clock
        self._on_published = on_published
        self._lease = lease
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """An answer was queued: look at once instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="responses-outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._lease is not None:
            try:
                await self._lease.release()
            except Exception as error:
                # Best effort: a standby takes over when the lease runs out anyway, and stopping must go on.
                logger.warning("outbox relay: could not give up the lease (%s)", type(error).__name__)

    async def publish_waiting(self) -> int:
        """Publish what waits, oldest first, stopping at the first event Kafka refuses (it raises), or when another
        replica holds the lease. Returns how many were published."""
        published = 0
        while await self._holds_lease() and (batch := await self._store.unpublished(BATCH)):
            done: list[OutboxEvent] = []
            try:
                for event in batch:
                    # Checked before every event: a holder that stalled past its lease must not publish what the
                    # replica that took over publishes too.
                    if not await self._holds_lease():
                        return published + len(done)
                    try:
                        await self._publish(event)
                    except Exception:
                        await self._store.count_attempt(event.position)
                        raise
                    done.append(event)
            finally:
                # What Kafka has is marked in one transaction per batch (one write per answer would compete with
                # the answers' own); also when a later event failed, so none of these is published again.
                if done:
                    await self._store.mark_published([event.position for event in done], at=self._clock())
                    for event in done:
                        self._on_published(event)
            published += len(done)
            if len(batch) < BATCH:
                # The outbox is empty now; an answer queued meanwhile has woken the relay for another round.
                break
        return published

    async def _holds_lease(self) -> bool:
        return self._lease is None or await self._lease.hold()

    async def _run(self) -> None:
        failures = 0
        while True:
            self._wake.clear()
            try:
                await self.publish_waiting()
                failures = 0
                delay = self._poll
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                # Full jitter, doubling up to the ceiling: replicas that lost Kafka together do not return together.
                delay = random.uniform(0, min(self._retry_max, 0.1 * 2**failures))  # noqa: S311 - not cryptography
                logger.warning(
                    "outbox relay: Kafka refused an answer event (%s); trying again in %.1f s (failure %d)",
                    type(error).__name__,
                    delay,
                    failures,
                )
            if failures:
                # New answers do not cut a backoff short: they wait in the outbox with the others.
                await asyncio.sleep(delay)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
