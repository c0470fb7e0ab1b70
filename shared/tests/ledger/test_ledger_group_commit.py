"""Group commit: concurrent writes share transactions, each caller learns its own result only once committed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from notify_shared.ledger import create_engine, read_transaction
from notify_shared.ledger.group_commit import GroupCommit

_metadata = sa.MetaData()
_notes = sa.Table("group_commit_notes", _metadata, sa.Column("name", sa.String(40), primary_key=True))


class _RefusedError(Exception):
    pass


class _Writer:
    """Inserts a note per request and remembers which transaction carried it; refuses names starting "refused"."""

    def __init__(self) -> None:
        self.transactions: list[object] = []  # kept alive, so their ids stay distinct
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting_at_gate = asyncio.Event()

    async def apply(self, connection: AsyncConnection, names: Sequence[str]) -> list[str | Exception]:
        outcomes: list[str | Exception] = []
        for name in names:
            if name.startswith("refused"):
                outcomes.append(_RefusedError(name))
                continue
            if name == "slow":
                self.waiting_at_gate.set()
                await self.gate.wait()
            await connection.execute(_notes.insert().values(name=name))
            self.transactions.append(connection.get_transaction())
            outcomes.append(name.upper())
        return outcomes


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(_metadata.create_all)
    yield engine
    await engine.dispose()


async def _stored(engine: AsyncEngine) -> set[str]:
    async with read_transaction(engine) as connection:
        return set((await connection.execute(sa.select(_notes.c.name))).scalars())


async def test_writes_that_queue_up_share_transactions_and_each_gets_its_own_result(engine: AsyncEngine) -> None:
    writer = _Writer()
    commits = GroupCommit(engine, writer.apply)
    names = [f"note-{number}" for number in range(20)]

    results = await asyncio.gather(*(commits.submit(name) for name in names))

    assert results == [name.upper() for name in names]
    assert await _stored(engine) == set(names)
    # The first write finds the database free and goes alone; the 19 that queued meanwhile go together.
    assert len({id(transaction) for transaction in writer.transactions}) == 2


async def test_a_lone_write_is_committed_at_once(engine: AsyncEngine) -> None:
    commits = GroupCommit(engine, _Writer().apply)

    assert await commits.submit("alone") == "ALONE"
    assert await _stored(engine) == {"alone"}


async def test_a_refused_item_fails_alone_and_the_others_are_committed(engine: AsyncEngine) -> None:
    commits = GroupCommit(engine, _Writer().apply)

    results = await asyncio.gather(
        commits.submit("first"), commits.submit("refused-1"), commits.submit("second"), return_exceptions=True
    )

    assert results[0] == "FIRST"
    assert isinstance(results[1], _RefusedError)
    assert results[2] == "SECOND"
    assert await _stored(engine) == {"first", "second"}


async def test_a_failing_transaction_fails_all_its_writes_and_the_next_one_works(engine: AsyncEngine) -> None:
    commits = GroupCommit(engine, _Writer().apply)
    await commits.submit("taken")

    # "taken" again breaks the whole transaction it lands in: nothing of it is kept, every caller hears of it.
    results = await asyncio.gather(
        commits.submit("before"), commits.submit("with-dup"), commits.submit("taken"), return_exceptions=True
    )

    assert results[0] == "BEFORE"  # went alone, before the others queued
    assert all(isinstance(result, IntegrityError) for result in results[1:])
    assert await _stored(engine) == {"taken", "before"}
    assert await commits.submit("after") == "AFTER"


async def test_when_the_committing_caller_is_cancelled_the_queued_writes_still_go(engine: AsyncEngine) -> None:
    writer = _Writer()
    writer.gate.clear()
    commits = GroupCommit(engine, writer.apply)
    leader = asyncio.create_task(commits.submit("slow"))
    await asyncio.wait_for(writer.waiting_at_gate.wait(), timeout=10)  # inside its transaction, holding the commit
    followers = [asyncio.create_task(commits.submit(name)) for name in ("queued-1", "queued-2")]
    await asyncio.sleep(0)  # both queue their writes and wait for the commit

    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    writer.gate.set()

    assert await asyncio.wait_for(asyncio.gather(*followers), timeout=10) == ["QUEUED-1", "QUEUED-2"]
    # The cancelled caller's write was put back too: an outcome recorded late beats one lost.
    assert await _stored(engine) == {"slow", "queued-1", "queued-2"}
