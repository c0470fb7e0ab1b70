"""Stopping the retry worker, as a service does before its broker goes down: what is being sent finishes and is
recorded, what was claimed but not started is given back at once, and nothing is sent twice."""

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
from notify_shared.testing.waiting import wait_until


@dataclass
class SlowMailServer:
    """Down at first; once up, each message waits at the gate until the test opens it."""

    name: str = "slow-mail"
    up: bool = False
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: int = 0
    accepted: list[str] = field(default_factory=list)

    async def send_email(self, message: OutgoingEmail) -> DeliveryReceipt:
        if not self.up:
            raise TransientDeliveryError("smtp_421")
        self.in_flight += 1
        await self.gate.wait()
        self.in_flight -= 1
        self.accepted.append(message.notification_id)
        return DeliveryReceipt(self.name, message.notification_id)

    async def send_sms(self, message: OutgoingSms) -> DeliveryReceipt:
        raise AssertionError("no SMS in these tests")

    async def aclose(self) -> None:
        return None


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(datetime(2026, 11, 20, 8, 0, tzinfo=UTC))


@pytest.fixture
async def ledger(database_url: str, clock: SettableClock) -> AsyncIterator[DeliveryLedger]:
    ledger = await DeliveryLedger.connect(database_url, clock=clock)
    try:
        yield ledger
    finally:
        await ledger.aclose()


def dispatcher_for(ledger: DeliveryLedger, server: SlowMailServer, clock: SettableClock) -> Dispatcher:
    return Dispatcher(
        ledger=ledger,
        render=render_notification,
        email=server,
        sms=server,
        status_sink=CollectingStatusSink(),
        email_sender="Bjølsen skole <no-reply@bjolsen.example.no>",
        backoff=Backoff(base_seconds=1, max_seconds=1),
        clock=clock,
        retry_queue=RetryQueue(ledger.engine, clock=clock, lease=timedelta(minutes=5)),
        concurrency=2,
    )


def invitations(count: int) -> list[PlannedNotification]:
    guardians = [samples.sample_guardian(number, channels=[Channel.EMAIL]) for number in range(1, count + 1)]
    event = samples.meeting_created(event_id="evt-stop", recipients=guardians)
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


async def test_a_stop_lets_the_sends_in_progress_finish_and_gives_back_the_claimed_rest_at_once(
    ledger: DeliveryLedger, clock: SettableClock
) -> None:
    server = SlowMailServer()
    dispatcher = dispatcher_for(ledger, server, clock)
    outcomes = await dispatcher.dispatch(invitations(10))
    assert {outcome.status for outcome in outcomes} == {DeliveryStatus.QUEUED}  # the mail server was down
    server.up = True
    clock.now += timedelta(seconds=2)

    # Four retries claimed; two sending (the dispatcher's concurrency), two waiting for a slot.
    worker = RetryWorker(dispatcher, owner="replica-1", clock=clock, batch_size=4)
    running = asyncio.create_task(worker.run_due())
    await wait_until(lambda: server.in_flight == 2, what="two retries at the mail server")
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0)
    assert not stopping.done(), "stop() returned while messages were still being sent"

    server.gate.set()
    await stopping
    # When stop() returns, what was sent is recorded: the service may close the database and the broker now.
    sent = sorted(server.accepted)
    assert len(sent) == 2
    for notification_id in sent:
        record = await ledger.get(notification_id)
        assert record is not None
        assert record.status is DeliveryStatus.SENT
    assert running.done()
    assert await running == 4
    # The rest, claimed or not, can be taken by another replica now, without waiting for a lease to run out.
    assert await dispatcher.retry_queue.pending() == 8
    other = RetryWorker(dispatcher_for(ledger, server, clock), owner="replica-2", clock=clock)
    assert await other.run_due() == 8
    assert sorted(server.accepted) == sorted(outcome.notification_id for outcome in outcomes)


async def test_a_stopped_worker_claims_nothing_more(ledger: DeliveryLedger, clock: SettableClock) -> None:
    server = SlowMailServer()
    dispatcher = dispatcher_for(ledger, server, clock)
    await dispatcher.dispatch(invitations(3))
    server.up = True
    server.gate.set()
    clock.now += timedelta(seconds=2)
    worker = RetryWorker(dispatcher, owner="replica-1", clock=clock)
    await worker.start()
    await worker.stop()

    assert await worker.run_due() == 0
    assert server.accepted == []
    assert await dispatcher.retry_queue.pending() == 3
