"""What operators read back: everything one event caused, and counts per school, channel and status."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest

from notify_shared.ledger import DeliveryKey, DeliveryLedger, DeliveryStatus, SummaryRow, notification_id_for

if TYPE_CHECKING:
    # Only for annotations: under --import-mode=importlib conftest is not importable at run time.
    from shared.tests.ledger.conftest import FakeClock

MEETING_CREATED = "01JD8X4K2M7Q9W3E5R6T8Y0U1I"
ABSENCE_REPORTED = "01JD8Z1Q5S7U9W1Y3A5C7E9G1J"
OSLO_SCHOOL = "nor-0301-4012"
BERGEN_SCHOOL = "nor-4601-2207"


async def send(
    ledger: DeliveryLedger,
    key: DeliveryKey,
    *outcome: DeliveryStatus,
    school_id: str = OSLO_SCHOOL,
    reason: str | None = None,
) -> str:
    """Claim `key`, then record each status in `outcome`; returns the notification id."""
    claim = await ledger.begin(key, source_event_type="meeting.created", school_id=school_id, language="nb")
    for status in outcome:
        await ledger.record(claim.notification_id, status, reason=reason)
    return claim.notification_id


async def test_history_shows_every_notification_an_event_caused_with_its_statuses_in_order(
    ledger: DeliveryLedger, clock: FakeClock
) -> None:
    start = clock.now
    await send(
        ledger,
        DeliveryKey(OSLO_SCHOOL, "/visma-flyt/0301", MEETING_CREATED, "g-1002", "email", "meeting_invitation"),
        DeliveryStatus.SENT,
    )
    clock.advance(seconds=1)
    sms = DeliveryKey(OSLO_SCHOOL, "/visma-flyt/0301", MEETING_CREATED, "g-1001", "sms", "meeting_invitation")
    sms_id = await send(ledger, sms, DeliveryStatus.SENT)
    clock.advance(minutes=2)
    await ledger.record(sms_id, DeliveryStatus.DELIVERED)
    await send(
        ledger,
        DeliveryKey(OSLO_SCHOOL, "/visma-flyt/0301", MEETING_CREATED, "g-1001", "email", "meeting_invitation"),
        DeliveryStatus.FAILED,
        reason="missing_email",
    )
    await send(
        ledger,
        DeliveryKey(OSLO_SCHOOL, "/visma-flyt/0301", ABSENCE_REPORTED, "g-1001", "sms", "absence_notice"),
        DeliveryStatus.SENT,
    )

    history = await ledger.history(MEETING_CREATED)

    assert [(h.delivery.guardian_id, h.delivery.channel, h.delivery.status) for h in history] == [
        ("g-1002", "email", DeliveryStatus.SENT),
        ("g-1001", "sms", DeliveryStatus.DELIVERED),
        ("g-1001", "email", DeliveryStatus.FAILED),
    ]
    sms_history = history[1]
    assert sms_history.delivery.notification_id == notification_id_for(sms)
    assert [(c.status, c.at) for c in sms_history.changes] == [
        (DeliveryStatus.SENDING, start + timedelta(seconds=1)),
        (DeliveryStatus.SENT, start + timedelta(seconds=1)),
        (DeliveryStatus.DELIVERED, start + timedelta(seconds=121)),
    ]
    assert [(c.status, c.reason) for c in history[2].changes] == [
        (DeliveryStatus.SENDING, None),
        (DeliveryStatus.FAILED, "missing_email"),
    ]


async def test_history_of_an_event_that_caused_nothing_is_empty(ledger: DeliveryLedger) -> None:
    assert await ledger.history("01JD8X4K2M0000000000000000") == []


async def test_get_finds_a_notification_by_key_or_by_id(ledger: DeliveryLedger) -> None:
    key = DeliveryKey(OSLO_SCHOOL, "/visma-flyt/0301", MEETING_CREATED, "g-1001", "email", "meeting_invitation")
    notification_id = await send(ledger, key, DeliveryStatus.SENT)

    by_key, by_id = await ledger.get(key), await ledger.get(notification_id)

    assert by_key is not None
    assert by_key == by_id
    assert by_key.key == key
    assert (
        await ledger.get(
            DeliveryKey(OSLO_SCHOOL, "/visma-flyt/0301", MEETING_CREATED, "g-9999", "email", "meeting_invitation")
        )
        is None
    )


async def test_summary_counts_notifications_created_in_the_window_by_school_channel_and_status(
    ledger: DeliveryLedger, clock: FakeClock
) -> None:
    since = clock.now
    await send(
        ledger,
        DeliveryKey(OSLO_SCHOOL, "/visma-flyt/0301", "01JDA0000000000000000000EV", "g-1", "email", "t"),
        DeliveryStatus.SENT,
    )
    await send(
        ledger,
        DeliveryKey(OSLO_SCHOOL, "/visma-flyt/0301", "01JDA0000000000000000000EV", "g-2", "email", "t"),
        DeliveryStatus.SENT,
    )
    await send(
        ledger,
        DeliveryKey(OSLO_SCHOOL, "/visma-flyt/0301", "01JDA0000000000000000000EV", "g-3", "email", "t"),
        DeliveryStatus.BOUNCED,
    )
    await send(
        ledger,
        DeliveryKey(OSLO_SCHOOL, "/visma-flyt/0301", "01JDA0000000000000000000EV", "g-1", "sms", "t"),
        DeliveryStatus.SENT,
    )
    await send(
        ledger, DeliveryKey(OSLO_SCHOOL, "/visma-flyt/0301", "01JDA0000000000000000000EV", "g-4", "sms", "t")
    )  # still sending
    await send(
        ledger,
        DeliveryKey(BERGEN_SCHOOL, "/visma-flyt/0301", "01JDB0000000000000000000EV", "g-7", "email", "t"),
        DeliveryStatus.SENT,
        school_id=BERGEN_SCHOOL,
    )
    clock.advance(days=1)
    until = clock.now
    await send(
        ledger,
        DeliveryKey(OSLO_SCHOOL, "/visma-flyt/0301", "01JDC0000000000000000000EV", "g-1", "email", "t"),
        DeliveryStatus.SENT,
    )

    summary = await ledger.summary(since, until)

    assert summary == [
        SummaryRow(OSLO_SCHOOL, "email", DeliveryStatus.BOUNCED, 1),
        SummaryRow(OSLO_SCHOOL, "email", DeliveryStatus.SENT, 2),
        SummaryRow(OSLO_SCHOOL, "sms", DeliveryStatus.SENDING, 1),
        SummaryRow(OSLO_SCHOOL, "sms", DeliveryStatus.SENT, 1),
        SummaryRow(BERGEN_SCHOOL, "email", DeliveryStatus.SENT, 1),
    ]


async def test_summary_accepts_any_time_zone_and_refuses_naive_times(ledger: DeliveryLedger, clock: FakeClock) -> None:
    await send(
        ledger,
        DeliveryKey(OSLO_SCHOOL, "/visma-flyt/0301", MEETING_CREATED, "g-1001", "email", "meeting_invitation"),
        DeliveryStatus.SENT,
    )
    oslo_winter = timezone(timedelta(hours=1))
    local_start = clock.now.astimezone(oslo_winter)

    assert len(await ledger.summary(local_start, local_start + timedelta(seconds=1))) == 1
    assert await ledger.summary(local_start + timedelta(seconds=1), local_start + timedelta(hours=1)) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        await ledger.summary(datetime(2025, 3, 7), datetime(2025, 3, 8))
