"""Group commit: writes that arrive while a transaction commits are applied together in the next one.

Each commit waits for the database to make the transaction durable (an fsync on SQLite and PostgreSQL alike),
and a service records every notification's outcome the moment the provider answered. With many sends in flight,
one transaction per outcome left the service waiting on commits most of the time. Here the first writer to find
the database free commits every write queued by then, so under load a transaction carries many outcomes, and a
lone write still goes at once: there is no timer and no added latency.

Every write is still durable before its caller goes on: a caller's result is set only after the transaction
holding its write has committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

Request = TypeVar("Request")
Result = TypeVar("Result")


ApplyMany = Callable[[AsyncConnection, Sequence[Request]], Awaitable[Sequence[Result | Exception]]]
"""Applies requests in the transaction it is given: one outcome per request, in order. An outcome that is an
exception refuses that request alone (it wrote nothing for it); raising fails the whole transaction."""


class GroupCommit(Generic[Request, Result]):
    """Applies requests with `apply_many`, many to a transaction when they queue up."""

    def __init__(self, engine: AsyncEngine, apply_many: ApplyMany[Request, Result]) -> None:
        self._engine = engine
        self._apply_many = apply_many
        self._pending: list[tuple[Request, asyncio.Future[Result]]] = []
        self._committing = asyncio.Lock()

    async def submit(self, request: Request) -> Result:
        """Apply `request` in a transaction, alone or with others queued meanwhile; its result once committed."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        async with self._committing:
            if not future.done():
                await self._commit_pending()
        return future.result()

    async def _commit_pending(self) -> None:
        batch, self._pending = self._pending, []
        try:
            async with self._engine.begin() as connection:
                outcomes = await self._apply_many(connection, [request for request, _ in batch])
        except asyncio.CancelledError:
            # The committing caller was cancelled: the others did not ask for that. Their writes go in the
            # next transaction (a rolled-back one left nothing behind); so may the cancelled caller's own, as
            # an outcome recorded late is better than one lost.
            self._pending[:0] = [(request, future) for request, future in batch if not future.done()]
            raise
        except Exception as failure:
            for _, future in batch:
                future.set_exception(failure)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
