"""Running a batch of sends concurrently without leaving any of them half done."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def finish_all(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """Await every item, then raise the first failure, if any; otherwise return the results in order.

    Unlike a bare `gather`, a failing send neither abandons its siblings to run on unobserved nor cancels them
    halfway: a notification a provider has accepted is always recorded before the batch fails, so a retry of
    the batch does not send it twice.
    """
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]  # no exceptions remain, so every item is a T
