"""Backoff between tries of a transient delivery failure."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter, so many failing sends do not retry in lockstep."""

    base_seconds: float = 0.5
    max_seconds: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed try number `attempt` (1-based); a provider's Retry-After wins when longer."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1))
        jittered = (rng or random).uniform(0, ceiling)
        return max(jittered, min(retry_after or 0.0, self.max_seconds))
