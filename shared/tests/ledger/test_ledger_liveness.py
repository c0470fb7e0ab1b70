"""Recovery in seconds: a crashed sender's claims are taken over once its heartbeat stops, never while it beats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from notify_shared.ledger import ClaimRequest, DeliveryKey, DeliveryLedger, DeliveryStatus, RetryQueue
from notify_shared.ledger.liveness import SenderLiveness
from notify_shared.ledger.tables import delivery_senders

if TYPE_CHECKING:
    from shared.tests.ledger.conftest import FakeClock

LEASE_SECONDS = 300
TIMEOUT = timedelta(seconds=20)
SCHOOL = "nor-0301-4012"


def request(guardian_id: str = "g-1001") -> ClaimRequest:
    key = DeliveryKey(
        SCHOOL, "/visma-flyt/0301", "01JD8X4K2M7Q9W3E5R6T8Y0U1I", guardian_id, "sms", "meeting_invitation"
    )
    return ClaimRequest(key, "meeting.created", SCHOOL, "nb")


class Sender:
    """One process's ledger with its heartbeat; `crash` stops beating without deregistering, as kill -9 does."""

    def __init__(self, ledger: DeliveryLedger, liveness: SenderLiveness) -> None:
        self.ledger = ledger
        self.liveness = liveness

    async def crash(self) -> None:
        beating = self.liveness._beating
        assert beating is not None
        beating.cancel()


@pytest.fixture
async def senders(database_url: str, clock: FakeClock) -> AsyncIterator[list[Sender]]:
    started: list[Sender] = []
    for _ in range(2):
        ledger = await DeliveryLedger.connect(database_url, clock=clock, lease_seconds=LEASE_SECONDS)
        liveness = SenderLiveness(ledger.engine, timeout=TIMEOUT, clock=clock)
        await liveness.start()
        ledger.liveness = liveness
        started.append(Sender(ledger, liveness))
    try:
        yield started
    finally:
        for sender in started:
            await sender.liveness.stop()
            await sender.ledger.aclose()


async def test_a_claim_of_a_crashed_sender_is_taken_over_once_its_heartbeat_is_older_than_the_timeout(
    senders: list[Sender], clock: FakeClock
) -> None:
    crashed, survivor = senders
    (first,) = await crashed.ledger.begin_many([request()])
    await crashed.crash()

    clock.advance(seconds=19)
    (too_early,) = await survivor.ledger.begin_many([request()])
    clock.advance(seconds=1)
    (taken_over,) = await survivor.ledger.begin_many([request()])

    assert first.should_send
    assert (too_early.should_send, too_early.in_flight) == (False, True)
    assert (taken_over.should_send, taken_over.previous_status, taken_over.attempts) == (
        True,
        DeliveryStatus.SENDING,
        2,
    )


async def test_a_live_senders_claim_is_never_taken_over_before_its_lease_however_long_it_sends(
    senders: list[Sender], clock: FakeClock
) -> None:
    holder, other = senders
    await holder.ledger.begin_many([request()])

    # The holder keeps beating (its heartbeat written at each step, as its background task does).
    for _ in range(14):
        clock.advance(seconds=19)
        await holder.liveness._beat()
        (attempt,) = await other.ledger.begin_many([request()])
        assert (attempt.should_send, attempt.in_flight) == (False, True)


async def test_a_claim_taken_over_from_a_dead_sender_cannot_be_taken_again_while_the_new_holder_lives(
    senders: list[Sender], clock: FakeClock
) -> None:
    crashed, survivor = senders
    await crashed.ledger.begin_many([request()])
    await crashed.crash()
    clock.advance(seconds=25)
    await survivor.liveness._beat()
    (taken_over,) = await survivor.ledger.begin_many([request()])

    # The old holder's claim row named it with attempt 1; the new claim (attempt 2) is the survivor's.
    clock.advance(seconds=5)
    await survivor.liveness._beat()
    (again,) = await survivor.ledger.begin_many([request()])

    assert taken_over.should_send
    assert (again.should_send, again.attempts) == (False, 2)


async def test_a_sender_whose_heartbeat_is_overdue_stops_sending_before_others_may_take_over(
    senders: list[Sender], clock: FakeClock
) -> None:
    sender, _ = senders
    await sender.crash()  # its heartbeat writes stop, as when its database connection is lost

    assert sender.liveness.may_send()
    clock.advance(seconds=9)
    assert sender.liveness.may_send()
    clock.advance(seconds=1)
    assert not sender.liveness.may_send()


async def test_claims_of_a_sender_that_never_registered_wait_for_the_lease(
    database_url: str, senders: list[Sender], clock: FakeClock
) -> None:
    unregistered = await DeliveryLedger.connect(database_url, clock=clock, lease_seconds=LEASE_SECONDS)
    try:
        await unregistered.begin_many([request()])
        clock.advance(minutes=4)
        (during_lease,) = await senders[0].ledger.begin_many([request()])
        clock.advance(minutes=1)
        (after_lease,) = await senders[0].ledger.begin_many([request()])
    finally:
        await unregistered.aclose()

    assert not during_lease.should_send
    assert after_lease.should_send


async def test_a_sender_that_stopped_gracefully_leaves_no_heartbeat_behind(
    senders: list[Sender], clock: FakeClock
) -> None:
    stopping, other = senders
    await stopping.liveness.stop()

    async with other.ledger.engine.connect() as connection:
        registered = set((await connection.execute(sa.select(delivery_senders.c.sender_id))).scalars())
    assert not stopping.liveness.may_send()
    assert registered == {other.liveness.sender_id}


async def test_retries_claimed_by_a_crashed_sender_are_free_for_others_once_its_heartbeat_is_stale(
    senders: list[Sender], clock: FakeClock
) -> None:
    crashed, survivor = senders
    (claim,) = await crashed.ledger.begin_many([request()])
    crashed_queue = RetryQueue(crashed.ledger.engine, clock=clock, liveness=crashed.liveness)
    survivor_queue = RetryQueue(survivor.ledger.engine, clock=clock, liveness=survivor.liveness)
    await crashed_queue.schedule(claim.notification_id, job="{}", due_at=clock(), attempt=2, reason="smtp_timeout")
    assert [r.notification_id for r in await crashed_queue.claim_due(owner=crashed.liveness.sender_id, limit=10)] == [
        claim.notification_id
    ]
    await crashed.crash()

    clock.advance(seconds=10)
    await survivor.liveness._beat()
    while_it_may_live = await survivor_queue.claim_due(owner=survivor.liveness.sender_id, limit=10)
    clock.advance(seconds=15)
    await survivor.liveness._beat()
    once_it_is_gone = await survivor_queue.claim_due(owner=survivor.liveness.sender_id, limit=10)

    assert while_it_may_live == []
    assert [retry.notification_id for retry in once_it_is_gone] == [claim.notification_id]
    assert not await crashed_queue.renew(claim.notification_id, owner=crashed.liveness.sender_id)
