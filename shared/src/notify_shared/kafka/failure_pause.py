"""Pausing before a message is retried after an infrastructure failure.

Handlers use FastStream's NACK_ON_ERROR policy: when the database or Kafka itself fails, the offset is not
committed and the message is read again. Without a pause that becomes a hot loop hammering a sick dependency, so
each consecutive failure waits longer (capped), and the first success resets the wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from notify_shared.delivery.retry import Backoff, Sleep

logger = logging.getLogger(__name__)

T = TypeVar("T")


class PauseOnFailure:
    """Runs a handler body; on an unexpected error waits with backoff and re-raises so the message is retried."""

    def __init__(self, backoff: Backoff | None = None, sleep: Sleep = asyncio.sleep) -> None:
        self._backoff = backoff or Backoff(base_seconds=1.0, max_seconds=60.0)
        self._sleep = sleep
        self._consecutive_failures = 0

    async def run(self, body: Callable[[], Awaitable[T]], *, event_id: str) -> T:
        try:
            result = await body()
        except Exception:
            self._consecutive_failures += 1
            delay = self._backoff.delay(self._consecutive_failures)
            logger.exception(
                "event %s failed (%d in a row); it will be retried in %.1fs",
                event_id,
                self._consecutive_failures,
                delay,
            )
            await self._sleep(delay)
            raise
        self._consecutive_failures = 0
        return result
