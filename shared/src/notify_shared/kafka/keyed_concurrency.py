"""Handling several events at once, each entity's events in order, committing offsets only below finished work.

FastStream hands a subscriber one record at a time and commits after the handler returns, so a service handled
one event at a time: every commit, SMTP and HTTP round trip of an event was a wait for all the events behind
it (the pipeline benchmark found the invitations service's main thread idle 43 % of the time while a backlog
waited). `KeyedConcurrency` lets the handler return as soon as an event is *taken on*:

- Up to `limit` events are handled at once; the handler waits for a free slot, which holds back consumption.
- Events with the same key (a meeting, a pupil) run one after the other, in the order they were read, across
  partitions and topics; events with different keys overlap.
- Offsets are committed by this class (the subscriber uses `AckPolicy.MANUAL`): per partition, up to the first
  event not yet finished, so a crash or a rebalance re-reads every event that was not finished, and the ledger
  makes that harmless. Nothing is committed past unfinished work, ever.
- A failing event is retried in place with backoff until it succeeds, as the sequential handler did by
  re-reading it; meanwhile other keys go on, and its partition's offset stays before it.
- On a rebalance, the partitions being revoked get their work finished and committed first (bounded by
  `handover_timeout`); at shutdown `close` does the same for everything.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from notify_shared.delivery.retry import Backoff, Sleep
from notify_shared.kafka.failure_pause import PauseOnFailure

logger = logging.getLogger(__name__)

Work = Callable[[], Awaitable[object]]


class OffsetCommitter(Protocol):
    """What commits offsets: the aiokafka consumer that read the record."""

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None: ...


@dataclass
class _Partition:
    committer: OffsetCommitter
    taken: deque[int] = field(default_factory=deque)
    """Offsets taken on and not yet below the committed position, in the order read (increasing)."""
    finished: set[int] = field(default_factory=set)
    position: int = -1
    """Where everything before is finished: the offset to commit."""
    committed: int = -1
    committing: asyncio.Lock = field(default_factory=asyncio.Lock)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class KeyedConcurrency:
    """Runs submitted events concurrently, in order per key, and commits their offsets as they finish."""

    def __init__(
        self,
        *,
        limit: int,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
        handover_timeout: float = 20.0,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._slots = asyncio.Semaphore(limit)
        self._backoff = backoff or Backoff(base_seconds=1.0, max_seconds=60.0)
        self._sleep = sleep
        self._handover_timeout = handover_timeout
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._last_of_key: dict[str, asyncio.Task[None]] = {}
        self._closing = asyncio.Event()

    @property
    def in_flight(self) -> int:
        """Events taken on and not finished."""
        return sum(len(partition.tasks) for partition in self._partitions.values())

    async def submit(
        self,
        partition: TopicPartition,
        offset: int,
        committer: OffsetCommitter,
        *,
        key: str | None,
        work: Work | None,
        event_id: str | None = None,
    ) -> None:
        """Take on the record at `offset`: run `work` once a slot is free and the key's earlier events are done.

        `work=None` takes on a record that needs no work (one the decoder dead-lettered), so the offset moves
        past it in order. After `close` nothing is taken on: the record stays uncommitted, to be read again.
        """
        if self._closing.is_set():
            return
        await self._slots.acquire()
        if self._closing.is_set():
            self._slots.release()
            return
        tracked = self._partitions.get(partition)
        if tracked is None or tracked.committer is not committer:
            # New, or assigned to this consumer again after a rebalance: positions from before do not count.
            tracked = self._partitions[partition] = _Partition(committer)
        tracked.taken.append(offset)
        before = self._last_of_key.get(key) if key is not None else None
        task = asyncio.create_task(self._run(partition, tracked, offset, before=before, work=work, event_id=event_id))
        tracked.tasks.add(task)
        if key is not None:
            self._last_of_key[key] = task
            task.add_done_callback(lambda done: self._forget_key(key, done))

    def rebalance_listener(self) -> ConsumerRebalanceListener:
        """For the subscriber: finishes and commits the work of partitions before they move to another member."""
        return _HandOver(self)

    async def hand_over(self, partitions: Collection[TopicPartition]) -> None:
        """Let the work on `partitions` finish (up to `handover_timeout`), commit it, and stop tracking them."""
        tracked = [
            (partition, self._partitions[partition]) for partition in partitions if partition in self._partitions
        ]
        tasks = {task for _, state in tracked for task in state.tasks}
        if tasks:
            _, unfinished = await asyncio.wait(tasks, timeout=self._handover_timeout)
            if unfinished:
                # Their events are read again by the next owner; the ledger's claims keep them from being sent
                # twice, and this member finishes what it started.
                logger.warning("%d events still in progress when their partitions moved on", len(unfinished))
        for partition, state in tracked:
            await self._commit(partition, state)
            if self._partitions.get(partition) is state:
                del self._partitions[partition]

    async def close(self) -> None:
        """Take on nothing more; let the work in progress finish and commit it (the service is stopping)."""
        self._closing.set()
        await self.hand_over(list(self._partitions))

    async def _run(
        self,
        partition: TopicPartition,
        tracked: _Partition,
        offset: int,
        *,
        before: asyncio.Task[None] | None,
        work: Work | None,
        event_id: str | None,
    ) -> None:
        try:
            if before is not None:
                # Wait for the key's previous event without being cancelled along with it.
                await asyncio.wait({before})
            if work is not None:
                await self._until_done(work, event_id)
        finally:
            self._slots.release()
            tracked.tasks.discard(asyncio.current_task())
        tracked.finished.add(offset)
        await self._commit(partition, tracked)

    async def _until_done(self, work: Work, event_id: str | None) -> None:
        # One pause per event: a failing meeting must not slow the retries of another, nor be reset by its success.
        pause = PauseOnFailure(self._backoff, self._sleep)
        while True:
            try:
                await pause.run(work, event_id=event_id or "(no id)")
            except Exception:  # noqa: S112 - pause.run logged it and waited; try again, as re-reading the event did
                continue
            return

    async def _commit(self, partition: TopicPartition, tracked: _Partition) -> None:
        # The position to commit is the first offset not finished: everything before it is done.
        while tracked.taken and tracked.taken[0] in tracked.finished:
            finished = tracked.taken.popleft()
            tracked.finished.discard(finished)
            tracked.position = finished + 1
        async with tracked.committing:
            position = tracked.position
            if position <= tracked.committed:
                return
            try:
                await tracked.committer.commit({partition: position})
            except KafkaError as error:
                # The next commit (another event finishing, a hand-over, shutdown) tries again from here; if
                # none succeeds, these events are read again and the ledger keeps them from being sent twice.
                logger.warning("committing %s[%d]@%d failed: %r", partition.topic, partition.partition, position, error)
                return
            tracked.committed = max(tracked.committed, position)

    def _forget_key(self, key: str, done: asyncio.Task[None]) -> None:
        if self._last_of_key.get(key) is done:
            del self._last_of_key[key]


class _HandOver(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka's base class is untyped
    def __init__(self, handling: KeyedConcurrency) -> None:
        self._handling = handling

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        await self._handling.hand_over(revoked)

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        """Nothing to do: a partition is tracked from its first record on."""
