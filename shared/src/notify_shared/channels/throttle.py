"""One gate per provider in a process: a limit on sends in flight, and a pause when the provider asks for one.

Without it, a provider answering 429 (HTTP) or 421 (SMTP) under a burst would get each of the burst's messages
back as a transient failure, every one of them going to the retry queue on its own backoff and coming back in a
new burst. With it, the first such answer pauses the whole channel for the Retry-After the provider gave (or a
default), every other send of that channel waits out the same pause, and then the channel goes on at half the
parallelism it had, growing back by one for each round of successful sends (additive increase, multiplicative
decrease, as TCP does). Only a pause longer than `max_wait` sends notifications to the retry queue, due when it
ends, because holding them in the process that long would hold their Kafka events too.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from notify_shared.channels.base import (
    DeliveryReceipt,
    EmailChannel,
    OutgoingEmail,
    OutgoingSms,
    SmsChannel,
    TransientDeliveryError,
)

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

PAUSED = "provider_paused"
"""Reason of a send refused here, without reaching the provider, while it asked for a pause longer than we wait."""


_TRIES_IN_PROCESS = 3
"""Slow-down answers one send takes before it goes to the retry queue, whatever the pauses: a provider that says
"429, Retry-After: 0" every time is not to be called in a tight loop."""


@dataclass(frozen=True)
class ThrottleLimits:
    """How one provider is treated; `docs/operations.md` gives the settings and defaults for common providers."""

    max_in_flight: int
    """Sends at the same time at most: the provider's connection limit for this instance."""
    default_pause: float = 5.0
    """Seconds to pause when the provider asks to slow down without saying for how long (SMTP never says)."""
    max_wait: float = 30.0
    """Longest a send waits here for a pause to end; a longer pause sends it to the retry queue instead."""

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if self.default_pause < 0 or self.max_wait < 0:
            raise ValueError("pauses cannot be negative")


class ProviderThrottle:
    """Shared by every send through one provider in this process; safe for concurrent use on one event loop.

    `clock` and `sleep` are replaced in tests, so that pauses pass without waiting.
    """

    def __init__(
        self,
        name: str,
        limits: ThrottleLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = name
        self._limits = limits
        self._clock = clock
        self._sleep = sleep
        self._allowed = limits.max_in_flight
        self._in_flight = 0
        self._successes = 0
        self._slow_downs = 0
        self._paused_until = float("-inf")
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def allowed_in_flight(self) -> int:
        """Sends allowed at the same time now: `max_in_flight`, or less after the provider asked to slow down."""
        return self._allowed

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def pause_remaining(self) -> float:
        """Seconds until the provider may be called again (0 when it is not paused)."""
        return max(0.0, self._paused_until - self._clock())

    async def run(self, send: Callable[[], Awaitable[_T]]) -> _T:
        """Call `send` once it is this send's turn; after a slow-down answer, wait the pause and call it again.

        Raises the provider's error when the pause would take this send past `max_wait`, or after its third slow-down
        answer, with the remaining pause as its `retry_after`, so that the retry queue holds it until then.
        """
        started = self._clock()
        for tries_left in range(_TRIES_IN_PROCESS - 1, -1, -1):
            async with self._turn(started):
                slow_downs_before = self._slow_downs
                try:
                    result = await send()
                except TransientDeliveryError as error:
                    if not error.slow_down:
                        raise
                    pause = self._slow_down(error.retry_after, sent_after_last=slow_downs_before == self._slow_downs)
                    if tries_left == 0 or self._clock() + pause - started > self._limits.max_wait:
                        raise TransientDeliveryError(
                            error.reason, retry_after=pause, http_status=error.http_status
                        ) from None
                else:
                    # A send that started before the provider's last "slow down" says nothing about the new pace.
                    if slow_downs_before == self._slow_downs:
                        self._succeeded()
                    return result
        raise AssertionError("unreachable: the last try returns or raises")

    @contextlib.asynccontextmanager
    async def _turn(self, started: float) -> AsyncIterator[None]:
        while True:
            pause = self.pause_remaining()
            if pause > 0:
                if self._clock() + pause - started > self._limits.max_wait:
                    raise TransientDeliveryError(PAUSED, retry_after=pause)
                await self._sleep(pause)
                continue
            if self._in_flight < self._allowed:
                break
            await self._wait_for_a_free_place()
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            self._wake_one()

    async def _wait_for_a_free_place(self) -> None:
        place: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(place)
        try:
            await place
        except asyncio.CancelledError:
            # Woken, then cancelled: the free place goes to the next in line. A place cancelled while waiting stays
            # in the line, done, and is skipped.
            if place.done() and not place.cancelled():
                self._wake_one()
            raise

    def _wake_one(self) -> None:
        while self._waiting:
            place = self._waiting.popleft()
            if not place.done():
                place.set_result(None)
                return

    def _slow_down(self, retry_after: float | None, *, sent_after_last: bool) -> float:
        """Pause the channel, and halve its parallelism unless the send went out before the last halving (the
        others of a burst say the same thing again); returns the pause from now."""
        pause = self._limits.default_pause if retry_after is None else retry_after
        now = self._clock()
        if sent_after_last:
            self._allowed = max(1, self._allowed // 2)
            self._successes = 0
            self._slow_downs += 1
            logger.warning(
                "%s asked to slow down: pausing it for %.1f s, then at most %d sends at a time",
                self.name,
                pause,
                self._allowed,
            )
        self._paused_until = max(self._paused_until, now + pause)
        return self._paused_until - now

    def _succeeded(self) -> None:
        if self._allowed >= self._limits.max_in_flight:
            return
        self._successes += 1
        if self._successes >= self._allowed:
            self._successes = 0
            self._allowed += 1
            if self._allowed == self._limits.max_in_flight:
                logger.info("%s is back to %d sends at a time", self.name, self._allowed)
            self._wake_one()  # one more may start now; each release after it wakes the next


class ThrottledEmailChannel(EmailChannel):
    """An email channel whose sends pass through a `ProviderThrottle`."""

    def __init__(self, channel: EmailChannel, throttle: ProviderThrottle) -> None:
        self.name = channel.name
        self.inner = channel
        self.throttle = throttle

    async def send_email(self, message: OutgoingEmail) -> DeliveryReceipt:
        return await self.throttle.run(lambda: self.inner.send_email(message))

    async def aclose(self) -> None:
        await self.inner.aclose()


class ThrottledSmsChannel(SmsChannel):
    """An SMS channel whose sends pass through a `ProviderThrottle`."""

    def __init__(self, channel: SmsChannel, throttle: ProviderThrottle) -> None:
        self.name = channel.name
        self.inner = channel
        self.throttle = throttle

    async def send_sms(self, message: OutgoingSms) -> DeliveryReceipt:
        return await self.throttle.run(lambda: self.inner.send_sms(message))

    async def aclose(self) -> None:
        await self.inner.aclose()
