"""Pausing before a message is retried after an infrastructure failure.

Handlers use FastStream's NACK_ON_ERROR policy: when the database or Kafka itself fails, the offset is not
committed and the message is read again. Without a pause that becomes a hot loop hammering a sick dependency, so
each consecutive failure waits longer (capped), and the first success resets the wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

from notify_shared.delivery.outcome import NotificationInFlightError
from notify_shared.delivery.retry import Backoff, Sleep

logger = logging.getLogger(__name__)

T = TypeVar("T")

_REMEMBERED_WAITS = 1000
"""Events whose wait was logged; bounded so a long outage cannot grow it without end."""


class PauseOnFailure:
    """Runs a handler body; on an unexpected error waits with backoff and re-raises so the message is retried."""

    def __init__(self, backoff: Backoff | None = None, sleep: Sleep = asyncio.sleep) -> None:
        self._backoff = backoff or Backoff(base_seconds=1.0, max_seconds=60.0)
        self._sleep = sleep
        self._consecutive_failures = 0
        self._waiting_events: OrderedDict[str, None] = OrderedDict()

    async def run(self, body: Callable[[], Awaitable[T]], *, event_id: str) -> T:
        try:
            result = await body()
        except NotificationInFlightError as waiting:
            # Not a failure: another sender's claim (or a crashed one's, until its heartbeat or lease runs out).
            # Waiting is normal after a crash, so it is said once per event, without a traceback.
            self._consecutive_failures += 1
            delay = self._backoff.delay(self._consecutive_failures)
            if self._first_wait_of(event_id):
                logger.warning(
                    "event %s waits for notification %s, claimed by another sender; retried until the claim is free",
                    event_id,
                    waiting.notification_id,
                )
            await self._sleep(delay)
            raise
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
        self._waiting_events.pop(event_id, None)
        return result

    def _first_wait_of(self, event_id: str) -> bool:
        if event_id in self._waiting_events:
            return False
        self._waiting_events[event_id] = None
        if len(self._waiting_events) > _REMEMBERED_WAITS:
            self._waiting_events.popitem(last=False)
        return True
