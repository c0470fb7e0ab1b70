"""Replicas of a service that start at the same moment on a new database must all come up.

Each service's store creates its own tables at start-up. Without the shared schema lock two PostgreSQL sessions
both saw a table missing and the second CREATE TABLE failed on a duplicate catalog entry, so one replica of a
new deployment exited (found by the pipeline benchmark's two-instance run).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from notify_digest.store import DigestStore
from notify_invitations.meeting_states import MeetingStateStore
from notify_reminders.store import ReminderStore
from notify_shared.ledger import create_engine, read_transaction

REPLICAS = 6


class _Store(Protocol):
    async def create_schema(self) -> None: ...


def _digest(engine: AsyncEngine) -> _Store:
    return DigestStore(engine)


def _reminders(engine: AsyncEngine) -> _Store:
    return ReminderStore(engine)


def _invitations(engine: AsyncEngine) -> _Store:
    return MeetingStateStore(engine)


@pytest.mark.parametrize("store_for", [_invitations, _reminders, _digest], ids=["invitations", "reminders", "digest"])
async def test_replicas_creating_their_tables_at_once_all_succeed(
    database_url: str, store_for: Callable[[AsyncEngine], _Store]
) -> None:
    engines = [create_engine(database_url) for _ in range(REPLICAS)]
    try:
        results = await asyncio.gather(
            *(store_for(engine).create_schema() for engine in engines), return_exceptions=True
        )
        assert [result for result in results if isinstance(result, BaseException)] == []
        async with read_transaction(engines[0]) as connection:
            tables = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        assert tables, "no table was created"
    finally:
        for engine in engines:
            await engine.dispose()
