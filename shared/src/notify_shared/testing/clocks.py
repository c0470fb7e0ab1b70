"""Clocks for tests that run at wall-clock speed from a chosen instant.

The samples describe a meeting on a fixed date; a service under test must see "now" before it, whatever the
date of the run, or it would (rightly) expire everything about a meeting that has started.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class RunningClock:
    """Starts at `start` and moves with the machine's monotonic clock, so timers and backoff still elapse."""

    def __init__(self, start: datetime) -> None:
        self._start = start.astimezone(UTC)
        self._origin = time.monotonic()

    def __call__(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._origin)


class SettableClock:
    """Stands still at `now` until a test sets or moves it; stored times and expiry are then exact."""

    def __init__(self, start: datetime) -> None:
        self.now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now
