"""Racing senders: however many tasks, processes or replicas claim one notification, exactly one sends it.

Each racer gets an engine of its own, as separate processes or replicas would have: on SQLite they share only
the file, on PostgreSQL only the server.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from notify_shared.ledger import Claim, ClaimRequest, DeliveryKey, DeliveryLedger, DeliveryStatus

if TYPE_CHECKING:
    # Only for annotations: under --import-mode=importlib conftest is not importable at run time.
    from shared.tests.ledger.conftest import FakeClock

RACERS = 20
MEETING_CREATED = "01JD8X4K2M7Q9W3E5R6T8Y0U1I"
INVITATION = DeliveryKey("nor-0301-4012", "/visma-flyt/0301", MEETING_CREATED, "g-1001", "email", "meeting_invitation")


@asynccontextmanager
async def separate_ledgers(url: str, clock: FakeClock, count: int) -> AsyncIterator[list[DeliveryLedger]]:
    """`count` ledgers on one database, each with its own engine and an open connection."""
    async with AsyncExitStack() as stack:
        ledgers = [
            await stack.enter_async_context(await DeliveryLedger.connect(url, clock=clock)) for _ in range(count)
        ]
        # Connect before the race starts, so the racers meet at the claim and not at the connection pool.
        await asyncio.gather(*(ledger.get("warm-up") for ledger in ledgers))
        yield ledgers


async def race(ledgers: list[DeliveryLedger], key: DeliveryKey) -> list[Claim]:
    start = asyncio.Barrier(len(ledgers))

    async def claim(ledger: DeliveryLedger) -> Claim:
        await start.wait()
        return await ledger.begin(key, source_event_type="meeting.created", school_id="nor-0301-4012", language="nb")

    return list(await asyncio.gather(*(claim(ledger) for ledger in ledgers)))


async def test_twenty_senders_racing_for_a_new_notification_claim_it_exactly_once(
    database_url: str, clock: FakeClock
) -> None:
    async with separate_ledgers(database_url, clock, RACERS) as ledgers:
        claims = await race(ledgers, INVITATION)
        [entry] = await ledgers[0].history(MEETING_CREATED)

    assert sum(claim.should_send for claim in claims) == 1
    assert all(claim.in_flight for claim in claims if not claim.should_send)
    assert [change.status for change in entry.changes] == [DeliveryStatus.SENDING]


async def test_twenty_tasks_sharing_one_ledger_claim_a_new_notification_exactly_once(
    ledger: DeliveryLedger,
) -> None:
    claims = await race([ledger] * RACERS, INVITATION)

    assert sum(claim.should_send for claim in claims) == 1


async def test_twenty_senders_racing_to_take_over_a_crashed_send_take_it_over_exactly_once(
    database_url: str, clock: FakeClock
) -> None:
    async with separate_ledgers(database_url, clock, RACERS) as ledgers:
        await race(ledgers[:1], INVITATION)  # this sender then crashes
        clock.advance(minutes=10)

        claims = await race(ledgers, INVITATION)
        stored = await ledgers[0].get(INVITATION)

    assert sum(claim.should_send for claim in claims) == 1
    assert stored is not None
    assert stored.attempts == 2


async def test_overlapping_digest_batches_claim_every_key_exactly_once(database_url: str, clock: FakeClock) -> None:
    keys = [
        DeliveryKey(
            "nor-0301-4012", "/visma-flyt/0301", "01JD9B7N3P5R8T0V2X4Z6A8C0E", f"g-{n}", "email", "weekly_digest"
        )
        for n in range(200)
    ]
    shuffled = random.Random(7)
    batches = []
    for _ in range(4):
        batch = shuffled.sample(keys, k=150)  # every pair of batches overlaps, each in its own order
        batches.append([ClaimRequest(key, "digest.due", "nor-0301-4012", "nb") for key in batch])

    async with separate_ledgers(database_url, clock, len(batches)) as ledgers:
        results = await asyncio.gather(*(ledger.begin_many(b) for ledger, b in zip(ledgers, batches, strict=True)))
        claimed_by_nobody = [key for key in keys if await ledgers[0].get(key) is None]

    senders = Counter(claim.notification_id for claims in results for claim in claims if claim.should_send)
    assert set(senders.values()) == {1}
    assert len(senders) + len(claimed_by_nobody) == len(keys)


async def test_replicas_starting_together_create_the_schema_once(database_url: str, clock: FakeClock) -> None:
    async with AsyncExitStack() as stack:
        ledgers = await asyncio.gather(*(DeliveryLedger.connect(database_url, clock=clock) for _ in range(5)))
        for ledger in ledgers:
            stack.push_async_callback(ledger.aclose)

        claim = await ledgers[-1].begin(
            INVITATION, source_event_type="meeting.created", school_id="nor-0301-4012", language="nb"
        )

    assert claim.should_send
