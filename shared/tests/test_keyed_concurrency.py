"""Several events at once, in order per key, with offsets committed only below finished work.

The committer here is a fake that records commits; the real consumer is exercised by the services' end-to-end
tests and the fault-injection suite (kill -9, rebalances, a broker restart) on the real broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from notify_shared.kafka.keyed_concurrency import KeyedConcurrency

MEETINGS = TopicPartition("meeting.created", 0)
OTHER = TopicPartition("meeting.created", 1)


class Committer:
    def __init__(self) -> None:
        self.commits: list[tuple[TopicPartition, int]] = []
        self.failing = False

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if self.failing:
            raise KafkaConnectionError("broker away")
        self.commits.extend(offsets.items())

    def position(self, partition: TopicPartition) -> int | None:
        positions = [offset for committed, offset in self.commits if committed == partition]
        return max(positions) if positions else None


class Gate:
    """Work that runs until the test opens its gate, noting when it started and finished."""

    def __init__(self, name: str, log: list[str], *, open_: bool = False) -> None:
        self.name = name
        self.log = log
        self.opened = asyncio.Event()
        if open_:
            self.opened.set()

    async def __call__(self) -> None:
        self.log.append(f"start {self.name}")
        await self.opened.wait()
        self.log.append(f"end {self.name}")


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_events_of_different_keys_run_at_once_and_of_one_key_in_order() -> None:
    handling = KeyedConcurrency(limit=8)
    committer = Committer()
    log: list[str] = []
    first_a, second_a, first_b = Gate("a1", log), Gate("a2", log, open_=True), Gate("b1", log, open_=True)

    await handling.submit(MEETINGS, 0, committer, key="a", work=first_a)
    await handling.submit(MEETINGS, 1, committer, key="a", work=second_a)
    await handling.submit(MEETINGS, 2, committer, key="b", work=first_b)
    await _settle()

    assert log == ["start a1", "start b1", "end b1"]  # b overtook a; a's second waits for its first
    first_a.opened.set()
    await handling.close()
    assert log[3:] == ["end a1", "start a2", "end a2"]


async def test_the_offset_committed_stops_at_the_first_unfinished_event() -> None:
    handling = KeyedConcurrency(limit=8)
    committer = Committer()
    log: list[str] = []
    slow = Gate("slow", log)

    await handling.submit(MEETINGS, 10, committer, key="slow", work=slow)
    for offset in (11, 12):
        await handling.submit(MEETINGS, offset, committer, key=f"quick-{offset}", work=Gate("q", log, open_=True))
    await _settle()

    assert committer.position(MEETINGS) is None  # 11 and 12 are done, but 10 is not: nothing may be committed
    slow.opened.set()
    await _settle()
    assert committer.position(MEETINGS) == 13


async def test_partitions_are_committed_independently_and_skipped_records_move_the_offset() -> None:
    handling = KeyedConcurrency(limit=8)
    committer = Committer()
    log: list[str] = []
    stuck = Gate("stuck", log)

    await handling.submit(MEETINGS, 0, committer, key="m1", work=stuck)
    await handling.submit(OTHER, 0, committer, key=None, work=None)  # a dead-lettered record
    await handling.submit(OTHER, 1, committer, key="m2", work=Gate("m2", log, open_=True))
    await _settle()

    assert committer.position(OTHER) == 2
    assert committer.position(MEETINGS) is None
    stuck.opened.set()
    await handling.close()
    assert committer.position(MEETINGS) == 1


async def test_a_failing_event_is_tried_again_with_backoff_while_other_keys_go_on() -> None:
    pauses: list[float] = []

    async def no_wait(seconds: float) -> None:
        pauses.append(seconds)
        await asyncio.sleep(0)

    handling = KeyedConcurrency(limit=8, sleep=no_wait)
    committer = Committer()
    tries = 0

    async def flaky() -> None:
        nonlocal tries
        tries += 1
        if tries < 4:
            raise ConnectionError("database away")

    log: list[str] = []
    await handling.submit(MEETINGS, 0, committer, key="flaky", work=flaky, event_id="evt-1")
    await handling.submit(MEETINGS, 1, committer, key="fine", work=Gate("fine", log, open_=True))
    await handling.close()

    assert tries == 4
    assert len(pauses) == 3
    assert log == ["start fine", "end fine"]
    assert committer.position(MEETINGS) == 2


async def test_no_more_than_the_limit_run_at_once_and_submitting_waits_for_a_slot() -> None:
    handling = KeyedConcurrency(limit=2)
    committer = Committer()
    log: list[str] = []
    gates = [Gate(str(number), log) for number in range(3)]

    await handling.submit(MEETINGS, 0, committer, key="k0", work=gates[0])
    await handling.submit(MEETINGS, 1, committer, key="k1", work=gates[1])
    third = asyncio.create_task(handling.submit(MEETINGS, 2, committer, key="k2", work=gates[2]))
    await _settle()

    assert not third.done()
    assert handling.in_flight == 2
    gates[0].opened.set()
    await asyncio.wait_for(third, timeout=5)
    gates[1].opened.set()
    gates[2].opened.set()
    await handling.close()
    assert committer.position(MEETINGS) == 3


async def test_after_close_nothing_is_taken_on_or_committed() -> None:
    handling = KeyedConcurrency(limit=4)
    committer = Committer()
    log: list[str] = []
    await handling.submit(MEETINGS, 0, committer, key="a", work=Gate("a", log, open_=True))
    await handling.close()

    await handling.submit(MEETINGS, 1, committer, key="b", work=Gate("b", log, open_=True))
    await _settle()

    assert log == ["start a", "end a"]
    assert committer.position(MEETINGS) == 1  # the record after close stays uncommitted, to be read again


async def test_a_revoked_partition_is_finished_and_committed_before_it_moves_on() -> None:
    handling = KeyedConcurrency(limit=4, handover_timeout=5)
    committer = Committer()
    log: list[str] = []
    work = Gate("w", log)
    await handling.submit(MEETINGS, 5, committer, key="a", work=work)

    handover = asyncio.create_task(handling.rebalance_listener().on_partitions_revoked([MEETINGS]))
    await _settle()
    assert not handover.done()
    work.opened.set()
    await asyncio.wait_for(handover, timeout=5)

    assert committer.position(MEETINGS) == 6
    assert handling.in_flight == 0


async def test_a_failed_commit_is_made_good_by_the_next_one() -> None:
    handling = KeyedConcurrency(limit=4)
    committer = Committer()
    log: list[str] = []
    committer.failing = True
    await handling.submit(MEETINGS, 0, committer, key="a", work=Gate("a", log, open_=True))
    await _settle()
    assert committer.position(MEETINGS) is None

    committer.failing = False
    await handling.close()
    assert committer.position(MEETINGS) == 1


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        KeyedConcurrency(limit=0)
