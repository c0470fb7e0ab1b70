"""Two SMS providers behind a circuit breaker: traffic moves to the second while the first is failing.

Only errors that prove the first provider did not take the message (no connection, HTTP 429 or 503) move
that message to the second provider at once. A timeout is different: the first provider may have accepted
the SMS before the answer was lost, so sending it through the second could reach the parent twice. It counts
against the breaker but the message itself goes back to the retry queue, to the provider the breaker picks then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from notify_shared.channels.base import (
    DeliveryReceipt,
    OutgoingSms,
    PermanentDeliveryError,
    SmsChannel,
    TransientDeliveryError,
)
from notify_shared.channels.provider_http import CONNECT_FAILED
from notify_shared.channels.throttle import PAUSED

logger = logging.getLogger(__name__)


class CircuitState(StrEnum):
    CLOSED = "closed"
    """The first provider takes the traffic."""
    OPEN = "open"
    """The first provider failed too often; the second takes the traffic until the cooldown ends."""
    HALF_OPEN = "half_open"
    """The cooldown ended: one trial message goes to the first provider; its result closes or reopens."""


@dataclass
class CircuitBreaker:
    """Opens after `failure_threshold` failures in a row; lets one trial through after `cooldown`."""

    failure_threshold: int = 5
    cooldown: timedelta = timedelta(seconds=30)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _failures: int = 0
    _opened_at: datetime | None = None
    _trial_running: bool = False

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self.clock() - self._opened_at >= self.cooldown:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def allows_request(self) -> bool:
        """True when this message should go to the guarded provider (a half-open circuit lets one through)."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def record_success(self) -> None:
        if self._opened_at is not None:
            logger.info("SMS circuit closes: the first provider answers again")
        self._failures = 0
        self._opened_at = None
        self._trial_running = False

    def end_trial(self) -> None:
        """Forget a trial that ended without an answer, so the next message may try again."""
        self._trial_running = False

    def record_failure(self) -> None:
        self._failures += 1
        reopening = self._trial_running
        self._trial_running = False
        if reopening or (self._opened_at is None and self._failures >= self.failure_threshold):
            logger.warning("SMS circuit opens after %d failures in a row", self._failures)
            self._opened_at = self.clock()


_NOT_ACCEPTED_STATUSES = frozenset({429, 503})
"""Providers answer "too many requests" and "service unavailable" before sending anything. A 500 or a gateway's
502/504 may come after the provider took the message, so they do not count."""


def proves_not_accepted(error: TransientDeliveryError) -> bool:
    """Whether the provider certainly did not take the message (so another provider may send it).

    A timeout or a connection lost mid-request proves nothing. A send held back here while the provider asked for
    a long pause never reached it.
    """
    return error.reason in (CONNECT_FAILED, PAUSED) or error.http_status in _NOT_ACCEPTED_STATUSES


class FailoverSmsChannel:
    """Sends through `primary` while its circuit is closed, through `secondary` while it is open."""

    def __init__(self, primary: SmsChannel, secondary: SmsChannel, breaker: CircuitBreaker) -> None:
        self.name = f"{primary.name}+{secondary.name}"
        self._primary = primary
        self._secondary = secondary
        self.breaker = breaker

    async def send_sms(self, message: OutgoingSms) -> DeliveryReceipt:
        if not self.breaker.allows_request():
            return await self._secondary.send_sms(message)
        answered = False
        try:
            receipt = await self._primary.send_sms(message)
            answered = True
        except PermanentDeliveryError:
            # The provider works; it refused this message (e.g. an invalid number), which another would too.
            answered = True
            raise
        except TransientDeliveryError as error:
            self.breaker.record_failure()
            if not proves_not_accepted(error):
                raise
            logger.info("notification %s moves to the second SMS provider (%s)", message.notification_id, error.reason)
            return await self._secondary.send_sms(message)
        finally:
            if answered:
                self.breaker.record_success()
            else:
                self.breaker.end_trial()  # cancelled, or a failure already counted: never leave a trial hanging
        return receipt

    async def aclose(self) -> None:
        await self._primary.aclose()
        await self._secondary.aclose()
