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
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

Request = TypeVar("Request")
Result = TypeVar("Result")


class GroupCommit(Generic[Request, Result]):
    """Applies requests with `apply`, many to a transaction when they queue up.

    `item_errors` are exceptions that `apply` raises for one request without having written anything (an
    unknown id, say): they fail that request alone. Any other failure fails every request of the transaction.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        apply: Callable[[AsyncConnection, Request], Awaitable[Result]],
        *,
        item_errors: tuple[type[Exception], ...] = (),
    ) -> None:
        self._engine = engine
        self._apply = apply
        self._item_errors = item_errors
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
        results: list[tuple[asyncio.Future[Result], Result]] = []
        refused: list[tuple[asyncio.Future[Result], Exception]] = []
        try:
            async with self._engine.begin() as connection:
                for request, future in batch:
                    try:
                        results.append((future, await self._apply(connection, request)))
                    except self._item_errors as item_error:
                        refused.append((future, item_error))
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
        for future, result in results:
            future.set_result(result)
        for future, refusal in refused:
            future.set_exception(refusal)
