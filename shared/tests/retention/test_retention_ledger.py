"""Retention in the delivery ledger: final notifications go once the records window has passed, nothing in
progress ever does, and one guardian can be erased on request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from notify_shared.ledger import ClaimRequest, DeliveryKey, DeliveryLedger, DeliveryStatus
from notify_shared.ledger.retention import ledger_rules
from notify_shared.ledger.tables import delivery_status_history
from notify_shared.retention.job import Retention, RetentionSchedule, RuleCount
from notify_shared.retention.rules import RetentionRule
from notify_shared.retention.windows import RetentionWindows, Window
from notify_shared.testing.clocks import SettableClock

WINDOWS = RetentionWindows(personal_data=timedelta(days=30), records=timedelta(days=400))
SCHOOL = "nor-0301-4012"
OTHER_SCHOOL = "nor-4601-2210"


def key(guardian_id: str, *, school_id: str = SCHOOL, event_id: str = "evt-1") -> ClaimRequest:
    delivery_key = DeliveryKey(
        school_id=school_id,
        source="/visma-flyt/0301",
        source_event_id=event_id,
        guardian_id=guardian_id,
        channel="email",
        template="digest",
    )
    return ClaimRequest(delivery_key, "message.posted", school_id, "nb")


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(datetime(2026, 1, 9, 12, 0, tzinfo=UTC))


@pytest.fixture
async def ledger(database_url: str, clock: SettableClock) -> AsyncIterator[DeliveryLedger]:
    ledger = await DeliveryLedger.connect(database_url, clock=clock)
    try:
        yield ledger
    finally:
        await ledger.aclose()


async def send(ledger: DeliveryLedger, request: ClaimRequest, status: DeliveryStatus) -> str:
    (claim,) = await ledger.begin_many([request])
    if status is not DeliveryStatus.SENDING:
        await ledger.record(claim.notification_id, status, provider="smtp")
    return claim.notification_id


async def history_rows(ledger: DeliveryLedger) -> int:
    async with ledger.engine.connect() as connection:
        return int(
            (await connection.execute(sa.select(sa.func.count()).select_from(delivery_status_history))).scalar_one()
        )


async def test_a_final_notification_goes_with_its_history_once_the_records_window_has_passed(
    ledger: DeliveryLedger, clock: SettableClock
) -> None:
    retention = Retention(ledger.engine, ledger_rules(), WINDOWS, clock=clock)
    old = await send(ledger, key("g-1"), DeliveryStatus.SENT)
    clock.now += timedelta(days=399)
    recent = await send(ledger, key("g-2"), DeliveryStatus.FAILED)

    before = await retention.purge()
    clock.now += timedelta(days=1)
    after = await retention.purge()

    assert before == [RuleCount("ledger.deliveries", "deliveries", 0)]
    assert after == [RuleCount("ledger.deliveries", "deliveries", 1)]
    assert await ledger.get(old) is None
    assert await ledger.get(recent) is not None
    assert await history_rows(ledger) == 2  # the recent one's sending and failed


async def test_a_notification_still_in_progress_is_never_purged_however_old(
    ledger: DeliveryLedger, clock: SettableClock
) -> None:
    retention = Retention(ledger.engine, ledger_rules(), WINDOWS, clock=clock)
    sending = await send(ledger, key("g-1"), DeliveryStatus.SENDING)
    clock.now += timedelta(days=1000)

    assert await retention.purge() == [RuleCount("ledger.deliveries", "deliveries", 0)]
    assert await ledger.get(sending) is not None


async def test_a_dry_run_counts_what_would_go_and_deletes_nothing(ledger: DeliveryLedger, clock: SettableClock) -> None:
    retention = Retention(ledger.engine, ledger_rules(), WINDOWS, clock=clock)
    sent = [await send(ledger, key(f"g-{n}"), DeliveryStatus.SENT) for n in range(3)]
    clock.now += timedelta(days=401)

    assert await retention.purge(dry_run=True) == [RuleCount("ledger.deliveries", "deliveries", 3)]
    assert all([await ledger.get(notification_id) is not None for notification_id in sent])


async def test_large_purges_go_in_batches_until_nothing_is_left(ledger: DeliveryLedger, clock: SettableClock) -> None:
    retention = Retention(ledger.engine, ledger_rules(), WINDOWS, clock=clock, batch_size=4)
    for n in range(10):
        await send(ledger, key(f"g-{n}"), DeliveryStatus.SENT)
    clock.now += timedelta(days=401)

    assert await retention.purge() == [RuleCount("ledger.deliveries", "deliveries", 10)]
    assert await history_rows(ledger) == 0


async def test_erasing_a_guardian_deletes_their_notifications_in_that_school_only(
    ledger: DeliveryLedger, clock: SettableClock
) -> None:
    retention = Retention(ledger.engine, ledger_rules(), WINDOWS, clock=clock)
    theirs = await send(ledger, key("g-1"), DeliveryStatus.SENT)
    in_progress = await send(ledger, key("g-1", event_id="evt-2"), DeliveryStatus.SENDING)
    same_id_other_school = await send(ledger, key("g-1", school_id=OTHER_SCHOOL), DeliveryStatus.SENT)
    someone_else = await send(ledger, key("g-2"), DeliveryStatus.SENT)

    counted = await retention.erase(SCHOOL, "g-1", dry_run=True)
    erased = await retention.erase(SCHOOL, "g-1")

    assert counted == erased == [RuleCount("ledger.deliveries", "deliveries", 2)]
    assert await ledger.get(theirs) is None
    assert await ledger.get(in_progress) is None
    assert await ledger.get(same_id_other_school) is not None
    assert await ledger.get(someone_else) is not None


async def test_the_schedule_counts_purged_rows_by_rule_for_prometheus(
    ledger: DeliveryLedger, clock: SettableClock
) -> None:
    registry = CollectorRegistry()
    schedule = RetentionSchedule(
        Retention(ledger.engine, ledger_rules(), WINDOWS, clock=clock),
        service="digest",
        interval=timedelta(hours=1),
        registry=registry,
    )
    await send(ledger, key("g-1"), DeliveryStatus.SENT)
    clock.now += timedelta(days=401)

    await schedule.run_once()

    purged = registry.get_sample_value(
        "notify_retention_purged_total", {"service": "digest", "rule": "ledger.deliveries"}
    )
    assert purged == 1


async def test_rules_of_tables_another_service_keeps_are_left_out(ledger: DeliveryLedger) -> None:
    elsewhere = sa.Table("reminders_elsewhere", sa.MetaData(), sa.Column("id", sa.String, primary_key=True))
    foreign = RetentionRule("reminders.elsewhere", elsewhere, "not here", Window.RECORDS, lambda _: sa.true())
    retention = Retention(ledger.engine, [*ledger_rules(), foreign], WINDOWS)

    assert [rule.name for rule in await retention.rules_here()] == ["ledger.deliveries"]
