"""Waiting on a condition with a deadline, instead of sleeping for a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]],
    *,
    within: float = 20.0,
    interval: float = 0.05,
    what: str = "",
) -> None:
    """Poll `condition` until it holds; fail with `what` when `within` seconds pass first."""
    deadline = time.monotonic() + within
    while True:
        outcome = condition()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what or 'the condition'}")
        await asyncio.sleep(interval)
