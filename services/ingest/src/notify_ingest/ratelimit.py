"""How often a caller may post: a token bucket per API key, and a cap on failed keys per client address.

Both are kept in this process's memory: each replica counts on its own, so behind N replicas a key may make up
to N times the configured rate (docs/ingest.md says so). They cost no database round trip on the hot path and
forget everything on restart, which suits a guard against floods rather than a quota.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MonotonicClock = Callable[[], float]

MAX_TRACKED_ADDRESSES = 10_000
"""Addresses with recent failures kept at once; beyond it the one that failed least recently is forgotten, so a
spray of addresses cannot grow memory without bound."""


class KeyRateLimits:
    """A token bucket per key: `burst` requests at once, refilled at `rate_per_second`."""

    def __init__(self, *, rate_per_second: float, burst: int, clock: MonotonicClock = time.monotonic) -> None:
        self._rate = rate_per_second
        self._burst = float(burst)
        self._clock = clock
        # key → (tokens left, when they were counted). One entry per school with a key: bounded by the settings.
        self._buckets: dict[str, tuple[float, float]] = {}

    def wait_for(self, key: str) -> float | None:
        """None when `key` may make a request now (and counts it); else the seconds until it may."""
        now = self._clock()
        tokens, counted_at = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - counted_at) * self._rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return None
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self._rate


def client_group(address: str) -> str:
    """What the failed-key cap counts by: an IPv4 address, or the /64 network of an IPv6 one (one subscriber
    usually holds a whole /64, and would otherwise get a fresh allowance from each of its addresses)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:  # not an IP address (a Unix socket, a test client): counted by what it is
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class FailedKeyLimits:
    """Counts requests with a missing or wrong key per client address (`client_group`) over a sliding window.

    An address with `limit` failures inside the last `window_seconds` is refused until the oldest of them leaves
    the window. While refused its keys are not even checked, so guessing learns nothing.
    """

    def __init__(
        self,
        *,
        limit: int,
        window_seconds: float,
        clock: MonotonicClock = time.monotonic,
        max_tracked: int = MAX_TRACKED_ADDRESSES,
    ) -> None:
        self._limit = limit
        self._window = window_seconds
        self._clock = clock
        self._max_tracked = max_tracked
        # address → times of its latest failures (at most `limit`: older ones cannot matter), least recent first.
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def wait_for(self, address: str) -> float | None:
        """None when `address` may try a key now; else the seconds until it may."""
        address = client_group(address)
        failures = self._failures.get(address)
        if failures is None:
            return None
        now = self._clock()
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        if len(failures) < self._limit:
            return None
        return failures[0] + self._window - now

    def failed(self, address: str) -> None:
        """Count one request from `address` whose key was missing or wrong."""
        address = client_group(address)
        failures = self._failures.setdefault(address, deque(maxlen=self._limit))
        failures.append(self._clock())
        self._failures.move_to_end(address)
        while len(self._failures) > self._max_tracked:
            self._failures.popitem(last=False)
