"""APScheduler as an alarm clock: it wakes a service when its next piece of work falls due.

The services keep their schedules of record in their databases, not in APScheduler's job store (APScheduler 3
cannot share a job store between replicas). So the in-memory scheduler holds just two jobs: a one-shot wake-up
at the next due time, re-armed whenever the schedule changes, and a periodic poll that picks up work scheduled
by other replicas, digest slots, and the claims of replicas that died.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

logger = logging.getLogger(__name__)

WAKE_JOB = "wake"
POLL_JOB = "poll"


class Alarm:
    """Keeps one wake-up armed for the earliest due work, in real time, whatever the injected clock says."""

    def __init__(
        self,
        *,
        work: Callable[[], Awaitable[object]],
        next_due: Callable[[], Awaitable[datetime | None]],
        clock: Callable[[], datetime],
        poll_interval: timedelta,
    ) -> None:
        self._work = work
        self._next_due = next_due
        self._clock = clock
        self._poll_interval = poll_interval
        # Two instances: a wake-up that comes while work runs must reach `_wake`, which notes it and returns at
        # once, instead of being dropped by APScheduler with a "maximum number of running instances" warning.
        self._scheduler = AsyncIOScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 2})
        self._stopped = False
        self._working = False
        self._again = False
        self._waking: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._scheduler.start()
        self._scheduler.add_job(
            self._wake, IntervalTrigger(seconds=self._poll_interval.total_seconds()), id=POLL_JOB, replace_existing=True
        )
        await self.rearm()

    def stop(self) -> None:
        """Stop at once: a wake-up in progress is cancelled (prefer `aclose` where there is time to wait)."""
        self._stopped = True
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    async def aclose(self) -> None:
        """Stop waking up, let a wake-up in progress finish, then shut the scheduler down."""
        self._stopped = True
        if self._waking:
            await asyncio.wait(self._waking)
        self.stop()

    async def rearm(self) -> datetime | None:
        """Arm the wake-up for the next due work; returns that due time (None when nothing is waiting)."""
        next_due = await self._next_due()
        if next_due is None:
            if self._scheduler.get_job(WAKE_JOB):
                self._scheduler.remove_job(WAKE_JOB)
            return None
        # The injected clock may differ from the wall clock (tests, replays): wait the clock's distance.
        delay = max(timedelta(0), next_due - self._clock().astimezone(UTC))
        self._scheduler.add_job(
            self._wake, DateTrigger(run_date=datetime.now(UTC) + delay), id=WAKE_JOB, replace_existing=True
        )
        return next_due

    async def _wake(self) -> None:
        if self._stopped:
            return
        if self._working:
            # A wake-up while work is running (a reminder fell due mid-round, a poll came round): run the work
            # again as soon as this round ends, rather than leaving what fell due to the next poll.
            self._again = True
            return
        task = asyncio.current_task()
        if task is not None:
            self._waking.add(task)
        self._working = True
        try:
            while True:
                self._again = False
                try:
                    await self._work()
                except Exception:
                    # The poll comes round again; a failing database must not kill the scheduler.
                    logger.exception("scheduled work failed; the next poll retries")
                    break
                if self._stopped or not self._again:
                    break
            if not self._stopped:
                await self.rearm()
        finally:
            self._working = False
            if task is not None:
                self._waking.discard(task)
