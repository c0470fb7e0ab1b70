"""Scheduled work (reminders, digests) in rounds: what falls due while a round is running does not wait for the
next poll, and a batch being sent does not hold up work claimed after it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from notify_shared.alarm import Alarm
from notify_shared.concurrency import work_in_lanes

AN_HOUR = timedelta(hours=1)


async def test_a_wake_up_during_a_round_runs_another_round_right_after_it_instead_of_being_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds: list[str] = []
    first_round_running = asyncio.Event()
    finish_first_round = asyncio.Event()
    second_round_ran = asyncio.Event()
    due: list[datetime | None] = [datetime.now(UTC)]

    async def work() -> None:
        rounds.append("round")
        if len(rounds) == 1:
            first_round_running.set()
            await finish_first_round.wait()
        else:
            due[0] = None  # nothing more is due after the second round
            second_round_ran.set()

    async def next_due() -> datetime | None:
        return due[0]

    alarm = Alarm(work=work, next_due=next_due, clock=lambda: datetime.now(UTC), poll_interval=AN_HOUR)
    await alarm.start()
    try:
        await asyncio.wait_for(first_round_running.wait(), 30)
        await alarm.rearm()  # something fell due meanwhile: the wake-up comes while the first round runs
        await asyncio.sleep(0.2)  # let the scheduler deliver that wake-up during the round
        finish_first_round.set()
        await asyncio.wait_for(second_round_ran.wait(), 30)
    finally:
        await alarm.aclose()
    assert rounds == ["round", "round"]
    # APScheduler used to drop such a wake-up ("maximum number of running instances reached"); it is noted now.
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_work_claimed_while_a_batch_is_being_sent_is_worked_before_that_batch_finishes() -> None:
    queue = ["early-1", "early-2"]
    log: list[str] = []
    release_early_batch = asyncio.Event()

    async def claim() -> list[str]:
        taken, queue[:] = list(queue), []
        return taken

    async def work(batch: Sequence[str]) -> None:
        log.append(f"start {','.join(batch)}")
        if "early-1" in batch:
            queue.append("fell-due-meanwhile")
            await release_early_batch.wait()
        else:
            release_early_batch.set()
        log.append(f"end {','.join(batch)}")

    await asyncio.wait_for(work_in_lanes(claim, work, lanes=2, recheck_after=0.01), 30)

    assert log == [
        "start early-1,early-2",
        "start fell-due-meanwhile",
        "end fell-due-meanwhile",
        "end early-1,early-2",
    ]


async def test_lanes_end_when_nothing_is_left_and_a_failing_batch_is_raised_after_the_others_finished() -> None:
    queue = [["doomed"], ["fine"]]
    worked: list[str] = []

    async def claim() -> list[str]:
        return queue.pop(0) if queue else []

    async def work(batch: Sequence[str]) -> None:
        if batch == ["doomed"]:
            raise RuntimeError("database away")
        await asyncio.sleep(0)
        worked.extend(batch)

    with pytest.raises(RuntimeError, match="database away"):
        await asyncio.wait_for(work_in_lanes(claim, work, lanes=2), 30)
    assert worked == ["fine"]
