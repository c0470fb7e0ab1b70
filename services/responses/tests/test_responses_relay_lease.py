"""The outbox lease: one relay publishes at a time; a stopped one hands over at once, a crashed one when it runs out."""

from __future__ import annotations

from datetime import timedelta

from notify_responses.relay_lease import LEASE, RelayLease
from notify_shared.ledger.database import create_engine
from notify_shared.samples import SAMPLE_NOW
from notify_shared.testing.clocks import SettableClock


async def test_one_relay_holds_the_lease_until_it_stops_or_runs_out(database_url: str) -> None:
    clock = SettableClock(SAMPLE_NOW)
    engine = create_engine(database_url)
    try:
        first = RelayLease(engine, holder="replica-a", clock=clock)
        second = RelayLease(engine, holder="replica-b", clock=clock)
        await first.create_schema()

        first_takes = await first.hold()
        second_while_first_holds = await second.hold()
        clock.now += LEASE - timedelta(seconds=1)
        first_renews = await first.hold()
        clock.now += LEASE - timedelta(seconds=1)
        second_after_renewal = await second.hold()
        await first.release()
        second_after_release = await second.hold()
        # The second "crashes": its lease runs out and the first takes over.
        clock.now += LEASE
        first_after_crash = await first.hold()
    finally:
        await engine.dispose()

    assert first_takes
    assert not second_while_first_holds
    assert first_renews
    assert not second_after_renewal
    assert second_after_release
    assert first_after_crash
