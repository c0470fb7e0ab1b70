"""Rate limits of the answer page, per link and per client address: fixed windows counted in memory.

Each replica counts on its own, so N replicas behind a load balancer allow up to N times the limit; the limits
are there to stop a script, not to meter parents (docs/responses.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class WindowLimit:
    """At most `limit` hits per key in each window of `window_seconds`. Keys are kept only for the current
    window, so memory stays bounded by the keys seen in one window."""

    def __init__(self, limit: int, window_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._window = window_seconds
        self._clock = clock
        self._window_started = clock()
        self._counts: dict[str, int] = {}

    def allow(self, key: str) -> bool:
        """Count a hit for `key`; False once it is over the limit in this window."""
        now = self._clock()
        if now - self._window_started >= self._window:
            self._counts.clear()
            self._window_started = now
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        return count <= self._limit
