"""The durable retry queue and its worker: every retry tried once per due time, across workers and crashes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from notify_shared import samples
from notify_shared.channels import DeliveryReceipt, OutgoingEmail, OutgoingSms, TransientDeliveryError
from notify_shared.contract import Channel
from notify_shared.delivery import (
    Backoff,
    CollectingStatusSink,
    Dispatcher,
    PlannedNotification,
    RetryWorker,
    SourceEventRef,
)
from notify_shared.ledger import DeliveryLedger, DeliveryStatus, RetryQueue
from notify_shared.rendering import render_notification
from notify_shared.testing.clocks import SettableClock


def _clock() -> SettableClock:
    return SettableClock(datetime(2026, 11, 20, 8, 0, tzinfo=UTC))


@dataclass
class DownThenUp:
    """A provider that is down until `up` is set, and remembers each message it accepted, by notification."""

    name: str = "down-then-up"
    up: bool = False
    accepted: list[str] = field(default_factory=list)

    async def _send(self, notification_id: str) -> DeliveryReceipt:
        # A real provider answers after a while: other workers get a chance to interleave.
        await asyncio.sleep(0)
        if not self.up:
            raise TransientDeliveryError("smtp_421")
        self.accepted.append(notification_id)
        return DeliveryReceipt(self.name, notification_id)

    async def send_email(self, message: OutgoingEmail) -> DeliveryReceipt:
        return await self._send(message.notification_id)

    async def send_sms(self, message: OutgoingSms) -> DeliveryReceipt:
        return await self._send(message.notification_id)

    async def aclose(self) -> None:
        return None


@pytest.fixture
def clock() -> SettableClock:
    return _clock()


@pytest.fixture
async def ledger(database_url: str, clock: SettableClock) -> AsyncIterator[DeliveryLedger]:
    ledger = await DeliveryLedger.connect(database_url, clock=clock)
    try:
        yield ledger
    finally:
        await ledger.aclose()


def _dispatcher(
    ledger: DeliveryLedger, channel: DownThenUp, clock: SettableClock, statuses: CollectingStatusSink
) -> Dispatcher:
    return Dispatcher(
        ledger=ledger,
        render=render_notification,
        email=channel,
        sms=channel,
        status_sink=statuses,
        email_sender="Bjølsen skole <no-reply@bjolsen.example.no>",
        backoff=Backoff(base_seconds=1, max_seconds=1),
        clock=clock,
        retry_queue=RetryQueue(ledger.engine, clock=clock, lease=timedelta(minutes=1)),
    )


def _plans(count: int) -> list[PlannedNotification]:
    guardians = [samples.sample_guardian(number, channels=[Channel.EMAIL]) for number in range(1, count + 1)]
    event = samples.meeting_created(event_id="evt-retry", recipients=guardians)
    return [
        PlannedNotification(
            source=SourceEventRef(source=event.source, id=event.id, type=event.type),
            school=event.data.school,
            guardian=guardian,
            channel=Channel.EMAIL,
            template="meeting_invitation",
            context={"school": event.data.school, "meeting": event.data.meeting, "guardian": guardian},
        )
        for guardian in guardians
    ]


async def test_two_workers_on_one_queue_send_each_retry_exactly_once(
    ledger: DeliveryLedger, clock: SettableClock
) -> None:
    channel, statuses = DownThenUp(), CollectingStatusSink()
    # Two replicas: each its own dispatcher and worker, one database.
    first, second = (_dispatcher(ledger, channel, clock, statuses) for _ in range(2))
    outcomes = await first.dispatch(_plans(60))
    assert {outcome.status for outcome in outcomes} == {DeliveryStatus.QUEUED}

    channel.up = True
    clock.now += timedelta(seconds=2)
    workers = [RetryWorker(first, owner="a", clock=clock, batch_size=7), RetryWorker(second, owner="b", clock=clock)]
    tried = await asyncio.gather(*(worker.run_due() for worker in workers))

    assert sum(tried) == 60
    assert sorted(channel.accepted) == sorted(outcome.notification_id for outcome in outcomes)
    assert await first.retry_queue.pending() == 0
    sent = [report for report in statuses.reports if report.status is DeliveryStatus.SENT]
    assert len(sent) == 60


async def test_a_retry_claimed_by_a_worker_that_died_is_tried_by_another_after_the_lease(
    ledger: DeliveryLedger, clock: SettableClock
) -> None:
    channel, statuses = DownThenUp(), CollectingStatusSink()
    dispatcher = _dispatcher(ledger, channel, clock, statuses)
    (outcome,) = await dispatcher.dispatch(_plans(1))
    clock.now += timedelta(seconds=2)
    # A worker claims the retry and dies before trying it.
    (claimed,) = await dispatcher.retry_queue.claim_due(owner="dead", limit=10)
    assert claimed.notification_id == outcome.notification_id
    channel.up = True

    survivor = RetryWorker(dispatcher, owner="alive", clock=clock)
    assert await survivor.run_due() == 0  # the claim is still live
    assert await dispatcher.retry_queue.next_due() == clock.now + timedelta(minutes=1)

    clock.now += timedelta(minutes=1)
    assert await survivor.run_due() == 1
    assert channel.accepted == [outcome.notification_id]


async def test_a_retry_that_cannot_be_read_fails_visibly_instead_of_looping(
    ledger: DeliveryLedger, clock: SettableClock
) -> None:
    channel, statuses = DownThenUp(), CollectingStatusSink()
    dispatcher = _dispatcher(ledger, channel, clock, statuses)
    (outcome,) = await dispatcher.dispatch(_plans(1))
    await dispatcher.retry_queue.schedule(
        outcome.notification_id, job='{"format": 0}', due_at=clock.now, attempt=2, reason="retry_scheduled:test"
    )

    assert await RetryWorker(dispatcher, owner="w", clock=clock).run_due() == 1

    record = await ledger.get(outcome.notification_id)
    assert record is not None
    assert (record.status, record.reason) == (DeliveryStatus.FAILED, "retry_unreadable")
    assert await dispatcher.retry_queue.pending() == 0
