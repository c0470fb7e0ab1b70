"""Delivery reports in the ledger: `sent` becomes `delivered`, `failed` or `bounced` once, whatever the provider
repeats, reorders or races."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from notify_shared.ledger import DeliveryKey, DeliveryLedger, DeliveryStatus
from notify_shared.ledger.provider_reports import ReportOutcome

if TYPE_CHECKING:
    from shared.tests.ledger.conftest import FakeClock

EVENT_ID = "01JD8X4K2M7Q9W3E5R6T8Y0U1I"
SCHOOL = "nor-0301-bjolsen"


async def sent(
    ledger: DeliveryLedger,
    guardian_id: str,
    *,
    channel: str = "sms",
    provider: str = "twilio",
    provider_message_id: str | None = "SM0001",
) -> str:
    """A notification the provider accepted, as the dispatcher records it."""
    claim = await ledger.begin(
        DeliveryKey(SCHOOL, "/visma-flyt/0301", EVENT_ID, guardian_id, channel, "meeting_invitation"),
        source_event_type="meeting.created",
        school_id=SCHOOL,
        language="nb",
    )
    await ledger.record(
        claim.notification_id,
        DeliveryStatus.SENT,
        provider=provider,
        provider_message_id=provider_message_id,
        segments=1 if channel == "sms" else None,
        language="nb",
    )
    return claim.notification_id


async def statuses(ledger: DeliveryLedger, notification_id: str) -> list[tuple[DeliveryStatus, str | None]]:
    (history,) = [h for h in await ledger.history(EVENT_ID) if h.delivery.notification_id == notification_id]
    return [(change.status, change.reason) for change in history.changes]


async def test_a_delivered_report_moves_a_sent_sms_to_delivered_with_a_history_row(
    ledger: DeliveryLedger, clock: FakeClock
) -> None:
    notification_id = await sent(ledger, "g-1001")
    clock.advance(seconds=40)

    result = await ledger.apply_provider_report("twilio", "SM0001", DeliveryStatus.DELIVERED)

    assert result.outcome is ReportOutcome.APPLIED
    assert result.delivery is not None
    assert (result.delivery.notification_id, result.delivery.status) == (notification_id, DeliveryStatus.DELIVERED)
    assert result.delivery.updated_at == clock.now
    assert (result.delivery.provider, result.delivery.provider_message_id, result.delivery.segments) == (
        "twilio",
        "SM0001",
        1,
    )
    assert await statuses(ledger, notification_id) == [
        (DeliveryStatus.SENDING, None),
        (DeliveryStatus.SENT, None),
        (DeliveryStatus.DELIVERED, None),
    ]


async def test_a_repeated_report_changes_nothing(ledger: DeliveryLedger) -> None:
    notification_id = await sent(ledger, "g-1001")
    await ledger.apply_provider_report("twilio", "SM0001", DeliveryStatus.FAILED, "twilio_30003")

    again = await ledger.apply_provider_report("twilio", "SM0001", DeliveryStatus.FAILED, "twilio_30003")

    assert again.outcome is ReportOutcome.REPEATED
    assert [status for status, _ in await statuses(ledger, notification_id)].count(DeliveryStatus.FAILED) == 1


async def test_a_late_report_after_another_final_status_is_ignored(ledger: DeliveryLedger) -> None:
    notification_id = await sent(ledger, "g-1001")
    await ledger.apply_provider_report("twilio", "SM0001", DeliveryStatus.DELIVERED)

    late = await ledger.apply_provider_report("twilio", "SM0001", DeliveryStatus.FAILED, "twilio_30005")

    assert late.outcome is ReportOutcome.IGNORED
    assert late.delivery is not None
    assert late.delivery.status is DeliveryStatus.DELIVERED
    assert (await ledger.get(notification_id)) == late.delivery


async def test_a_report_for_a_reference_nobody_sent_is_unknown(ledger: DeliveryLedger) -> None:
    await sent(ledger, "g-1001")

    for provider, reference in (("twilio", "SM9999"), ("webhook", "SM0001")):
        result = await ledger.apply_provider_report(provider, reference, DeliveryStatus.DELIVERED)
        assert (result.outcome, result.delivery) == (ReportOutcome.UNKNOWN, None)


async def test_our_notification_id_finds_a_notification_whose_provider_gave_no_reference(
    ledger: DeliveryLedger,
) -> None:
    notification_id = await sent(ledger, "g-1001", provider="webhook", provider_message_id=None)

    result = await ledger.apply_provider_report(
        "webhook", "gw-77", DeliveryStatus.DELIVERED, notification_id=notification_id
    )

    assert result.outcome is ReportOutcome.APPLIED


async def test_our_notification_id_never_lets_another_provider_or_reference_touch_a_notification(
    ledger: DeliveryLedger,
) -> None:
    notification_id = await sent(ledger, "g-1001", provider="webhook", provider_message_id="gw-1")

    other_provider = await ledger.apply_provider_report(
        "twilio", None, DeliveryStatus.DELIVERED, notification_id=notification_id
    )
    other_reference = await ledger.apply_provider_report(
        "webhook", "gw-2", DeliveryStatus.DELIVERED, notification_id=notification_id
    )

    assert other_provider.outcome is ReportOutcome.UNKNOWN
    assert other_reference.outcome is ReportOutcome.UNKNOWN
    record = await ledger.get(notification_id)
    assert record is not None
    assert record.status is DeliveryStatus.SENT


async def test_a_report_that_overtakes_our_record_of_the_send_changes_nothing(ledger: DeliveryLedger) -> None:
    claim = await ledger.begin(
        DeliveryKey(SCHOOL, "/visma-flyt/0301", EVENT_ID, "g-1001", "sms", "meeting_invitation"),
        source_event_type="meeting.created",
        school_id=SCHOOL,
        language="nb",
    )

    result = await ledger.apply_provider_report(
        "webhook", "gw-1", DeliveryStatus.DELIVERED, notification_id=claim.notification_id
    )

    assert result.outcome is ReportOutcome.NOT_SENT_YET
    assert await statuses(ledger, claim.notification_id) == [(DeliveryStatus.SENDING, None)]


async def test_a_bounce_finds_the_email_by_its_message_id(ledger: DeliveryLedger) -> None:
    message_id = "<0a1b2c3d4e5f60718293a4b5c6@bjolsen.example.no>"
    notification_id = await sent(ledger, "g-1001", channel="email", provider="smtp", provider_message_id=message_id)

    result = await ledger.apply_provider_report("smtp", message_id, DeliveryStatus.BOUNCED, "permanent_bounce:5.1.1")

    assert result.outcome is ReportOutcome.APPLIED
    assert await statuses(ledger, notification_id) == [
        (DeliveryStatus.SENDING, None),
        (DeliveryStatus.SENT, None),
        (DeliveryStatus.BOUNCED, "permanent_bounce:5.1.1"),
    ]


async def test_concurrent_copies_of_one_report_apply_once(ledger: DeliveryLedger) -> None:
    notification_id = await sent(ledger, "g-1001")

    results = await asyncio.gather(
        *(ledger.apply_provider_report("twilio", "SM0001", DeliveryStatus.DELIVERED) for _ in range(5))
    )

    assert sorted(result.outcome.value for result in results) == ["applied"] + ["repeated"] * 4
    assert [status for status, _ in await statuses(ledger, notification_id)].count(DeliveryStatus.DELIVERED) == 1


@pytest.mark.parametrize("status", [DeliveryStatus.SENT, DeliveryStatus.QUEUED, DeliveryStatus.SUPPRESSED])
async def test_a_report_may_only_say_delivered_failed_or_bounced(
    ledger: DeliveryLedger, status: DeliveryStatus
) -> None:
    with pytest.raises(ValueError, match="cannot set"):
        await ledger.apply_provider_report("twilio", "SM0001", status)
