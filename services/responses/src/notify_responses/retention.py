"""Forgetting what is no longer needed: a meeting, its invitations (with the guardians' numbers) and answers are
deleted `RESPONSES_RETENTION` after the meeting ended. The school has the answers as meeting.rsvp events; this
service keeps them only to show the page and to publish changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from notify_responses.store import ResponseStore

logger = logging.getLogger(__name__)

EVERY = timedelta(hours=1)
"""How often finished meetings are looked for."""


class Retention:
    """One loop per replica; deleting what another replica already deleted is harmless."""

    def __init__(self, store: ResponseStore, *, keep: timedelta, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._keep = keep
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        forgotten = await self._store.forget_meetings_ended_before(self._clock() - self._keep)
        if forgotten:
            logger.info("retention: %d finished meetings forgotten with their invitations and answers", forgotten)
        return forgotten

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="responses-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("retention: finished meetings could not be deleted; trying again in an hour")
            await asyncio.sleep(EVERY.total_seconds())
