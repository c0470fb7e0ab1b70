"""Running a batch of sends concurrently without leaving any of them half done, and batches in lanes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
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


async def work_in_lanes(
    claim: Callable[[], Awaitable[Sequence[T]]],
    work: Callable[[Sequence[T]], Awaitable[object]],
    *,
    lanes: int,
    recheck_after: float = 0.2,
) -> None:
    """Claim a batch and work it, in `lanes` loops at once, until a claim finds nothing while no lane is busy.

    Scheduled work keeps falling due while a batch is being sent. With one loop, what falls due meanwhile waits
    for the whole batch to finish; here a lane whose claim came back empty claims again as soon as another lane
    finishes a batch, or after `recheck_after` seconds, so new work waits for no batch but starts as soon as a
    send slot is free, and one lane claims (a database round trip) while another's batch is being sent.
    A failing lane does not stop the others; the first failure is raised once all have finished.
    """
    if lanes < 1:
        raise ValueError("lanes must be at least 1")
    busy = 0
    batch_finished = asyncio.Event()

    async def lane() -> None:
        nonlocal busy
        while True:
            batch = await claim()
            if not batch:
                if busy == 0:
                    return
                batch_finished.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(batch_finished.wait(), recheck_after)
                continue
            busy += 1
            try:
                await work(batch)
            finally:
                busy -= 1
                batch_finished.set()

    await finish_all(lane() for _ in range(lanes))
