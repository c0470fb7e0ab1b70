"""The retry worker: tries queued notifications again when they fall due, in every service.

It claims due retries from the ledger's retry queue in batches and hands each to `Dispatcher.retry`, after
publishing the status events Kafka refused earlier (`status_backlog`). An APScheduler alarm
(`notify_shared.alarm`) wakes it at the earliest due time and polls now and then for retries scheduled by other
replicas or left by one that died.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from notify_shared.alarm import Alarm
from notify_shared.concurrency import finish_all
from notify_shared.delivery.dispatcher import Dispatcher
from notify_shared.delivery.job import DeliveryJob
from notify_shared.ledger import DueRetry

logger = logging.getLogger(__name__)


class RetryWorker:
    """Sends due retries until none is left; `start()` after the broker is up, `stop()` before it goes down."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        owner: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        poll_interval: timedelta = timedelta(seconds=15),
        batch_size: int | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self._queue = dispatcher.retry_queue
        self._owner = owner
        # No more than can be sent at once: a claim must not age in a queue while its lease runs out.
        self._batch_size = batch_size or dispatcher.concurrency
        self._alarm = Alarm(work=self.run_due, next_due=self._queue.next_due, clock=clock, poll_interval=poll_interval)
        self._armed_for: datetime | None = None
        self._stopping = False
        self._running: set[asyncio.Task[int]] = set()
        dispatcher.listen_for_retries(self._notice)

    async def start(self) -> None:
        self._stopping = False
        await self._alarm.start()

    async def stop(self) -> None:
        """Stop claiming; sends in progress finish and are recorded, claimed retries not yet started are released."""
        self._stopping = True
        await self._alarm.aclose()
        if self._running:
            await asyncio.wait(self._running)

    async def pending(self) -> int:
        return await self._queue.pending()

    async def run_due(self) -> int:
        """Try every due retry; returns how many were tried. Safe to call from several places at once."""
        if self._stopping:
            return 0
        task = asyncio.ensure_future(self._drain())
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        try:
            # Shielded: a stop() that cancels the alarm's job still waits for claimed retries to be recorded.
            return await asyncio.shield(task)
        finally:
            self._armed_for = None

    async def _drain(self) -> int:
        # Status events Kafka refused earlier go out first, so the operators' view catches up before new ones.
        await self._dispatcher.status_backlog.republish()
        tried = 0
        while not self._stopping:
            due = await self._queue.claim_due(owner=self._owner, limit=self._batch_size)
            if not due:
                break
            await finish_all(self._retry(retry) for retry in due)
            tried += len(due)
        return tried

    async def _retry(self, retry: DueRetry) -> None:
        if self._stopping:
            # Not started yet: give it back, so another replica (or the next start) takes it at once.
            await self._queue.release(retry.notification_id, owner=self._owner)
            return
        try:
            job = DeliveryJob.from_json(retry.job)
        except (ValueError, KeyError, TypeError):
            await self._dispatcher.give_up_on_unreadable_retry(retry.notification_id)
            return

        async def still_ours() -> bool:
            return not self._stopping and await self._queue.renew(retry.notification_id, owner=self._owner)

        outcome = await self._dispatcher.retry(job, still_ours=still_ours)
        if outcome is None:
            # Skipped because we are stopping (or the claim passed on, where this changes nothing).
            await self._queue.release(retry.notification_id, owner=self._owner)

    async def _notice(self, due_at: datetime) -> None:
        # Re-arming costs a query; only an earlier due time than the armed one needs it.
        if self._armed_for is None or due_at < self._armed_for:
            self._armed_for = await self._alarm.rearm()
