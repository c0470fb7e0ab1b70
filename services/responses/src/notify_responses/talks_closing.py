"""The loop that announces closed booking windows (`TalksService.close_due_rounds`), in every replica.

Replicas may run it at the same time: a round is closed in the transaction that queues its event, and on
PostgreSQL a round another replica is closing is skipped, so each round gets one `talks.round_closed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from notify_responses.talks_service import TalksService

logger = logging.getLogger(__name__)

CHECK_INTERVAL_SECONDS = 30.0
"""How often the loop looks for windows that have closed: a round is announced at most this late."""


class RoundCloser:
    def __init__(
        self, service: Callable[[], TalksService], *, interval_seconds: float = CHECK_INTERVAL_SECONDS
    ) -> None:
        self._service = service
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="responses-talk-round-closer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._service().close_due_rounds()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # A database that is away for a moment: the next round of the loop tries again.
                logger.warning("closing booking rounds failed (%s); trying again later", type(error).__name__)
            await asyncio.sleep(self._interval)
