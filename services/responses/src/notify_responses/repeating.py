"""One background loop that repeats a piece of work at an interval until stopped, shared by the booking rounds'
closer and the booking invitations: a failure is logged (its type only) and tried again at the next turn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


class RepeatingTask:
    def __init__(self, work: Callable[[], Awaitable[object]], *, interval_seconds: float, name: str, what: str) -> None:
        self._work = work
        self._interval = interval_seconds
        self._name = name
        self._what = what
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._work()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # A database that is away for a moment: the next turn of the loop tries again.
                logger.warning("%s failed (%s); trying again later", self._what, type(error).__name__)
            await asyncio.sleep(self._interval)
