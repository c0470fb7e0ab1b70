"""Claiming before sending: a notification is sent once, however often Kafka redelivers its event."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

import pytest

from notify_shared.ledger import (
    FINAL_STATUSES,
    Claim,
    ClaimRequest,
    DeliveryKey,
    DeliveryLedger,
    DeliveryStatus,
    UnknownNotificationError,
    notification_id_for,
)

if TYPE_CHECKING:
    # Only for annotations: under --import-mode=importlib conftest is not importable at run time.
    from shared.tests.ledger.conftest import FakeClock

MEETING_CREATED = "01JD8X4K2M7Q9W3E5R6T8Y0U1I"
SCHOOL = "nor-0301-4012"


def invitation(guardian_id: str = "g-1001", *, channel: str = "email", event_id: str = MEETING_CREATED) -> DeliveryKey:
    return DeliveryKey(SCHOOL, "/visma-flyt/0301", event_id, guardian_id, channel, "meeting_invitation")


async def claim(ledger: DeliveryLedger, key: DeliveryKey) -> Claim:
    return await ledger.begin(key, source_event_type="meeting.created", school_id=SCHOOL, language="nb")


async def test_the_first_claim_of_a_notification_sends_it_and_marks_it_sending(
    ledger: DeliveryLedger, clock: FakeClock
) -> None:
    key = invitation()

    first = await claim(ledger, key)

    assert first == Claim(notification_id_for(key), should_send=True, previous_status=None, attempts=1)
    stored = await ledger.get(key)
    assert stored is not None
    assert (stored.status, stored.attempts, stored.school_id, stored.language) == (
        DeliveryStatus.SENDING,
        1,
        SCHOOL,
        "nb",
    )
    assert stored.created_at == stored.updated_at == clock.now


async def test_a_redelivered_event_does_not_send_a_notification_that_was_sent(ledger: DeliveryLedger) -> None:
    first = await claim(ledger, invitation())
    await ledger.record(first.notification_id, DeliveryStatus.SENT, provider="smtp")

    again = await claim(ledger, invitation())

    assert again == Claim(first.notification_id, should_send=False, previous_status=DeliveryStatus.SENT, attempts=1)
    assert not again.in_flight


@pytest.mark.parametrize("final", sorted(FINAL_STATUSES))
async def test_no_final_status_is_ever_claimed_again(
    ledger: DeliveryLedger, clock: FakeClock, final: DeliveryStatus
) -> None:
    first = await claim(ledger, invitation())
    await ledger.record(first.notification_id, final, reason="test_outcome")
    clock.advance(days=3)

    again = await claim(ledger, invitation())

    assert (again.should_send, again.previous_status) == (False, final)


async def test_a_notification_left_sending_by_a_crashed_sender_is_claimed_again_once_the_lease_ran_out(
    ledger: DeliveryLedger, clock: FakeClock
) -> None:
    crashed_at = clock.now
    crashed = await claim(ledger, invitation())  # ...and its sender never reported back
    clock.advance(seconds=ledger.lease_seconds)

    retry = await claim(ledger, invitation())

    assert retry == Claim(crashed.notification_id, True, previous_status=DeliveryStatus.SENDING, attempts=2)
    [entry] = await ledger.history(MEETING_CREATED)
    assert [(change.status, change.reason, change.at) for change in entry.changes] == [
        (DeliveryStatus.SENDING, None, crashed_at),
        (DeliveryStatus.SENDING, "lease_expired", clock.now),
    ]


async def test_a_notification_another_sender_is_still_sending_is_left_to_it(
    ledger: DeliveryLedger, clock: FakeClock
) -> None:
    sending = await claim(ledger, invitation())
    clock.advance(seconds=ledger.lease_seconds - 1)

    meanwhile = await claim(ledger, invitation())

    assert meanwhile == Claim(sending.notification_id, False, previous_status=DeliveryStatus.SENDING, attempts=1)
    assert meanwhile.in_flight


async def test_recording_sending_renews_the_lease_and_counts_an_attempt(
    ledger: DeliveryLedger, clock: FakeClock
) -> None:
    first = await claim(ledger, invitation())
    clock.advance(seconds=ledger.lease_seconds - 10)
    await ledger.record(first.notification_id, DeliveryStatus.SENDING, reason="retrying:smtp_421")
    clock.advance(seconds=20)

    meanwhile = await claim(ledger, invitation())

    assert not meanwhile.should_send
    assert meanwhile.attempts == 2


async def test_renewing_a_live_claim_keeps_others_off_for_another_lease(
    ledger: DeliveryLedger, clock: FakeClock
) -> None:
    ours = await claim(ledger, invitation())
    clock.advance(seconds=ledger.lease_seconds - 1)

    assert await ledger.renew(ours.notification_id, attempts=ours.attempts)
    clock.advance(seconds=ledger.lease_seconds - 1)
    meanwhile = await claim(ledger, invitation())

    assert meanwhile.in_flight


async def test_a_claim_taken_over_or_settled_is_no_longer_ours_to_renew(
    ledger: DeliveryLedger, clock: FakeClock
) -> None:
    ours = await claim(ledger, invitation())
    clock.advance(seconds=ledger.lease_seconds)
    taken_over = await claim(ledger, invitation())

    assert not await ledger.renew(ours.notification_id, attempts=ours.attempts)
    assert await ledger.renew(taken_over.notification_id, attempts=taken_over.attempts)
    await ledger.record(taken_over.notification_id, DeliveryStatus.SENT)
    assert not await ledger.renew(taken_over.notification_id, attempts=taken_over.attempts)


async def test_a_notification_in_the_retry_queue_is_left_to_the_retry_worker(ledger: DeliveryLedger) -> None:
    first = await claim(ledger, invitation())
    await ledger.record(first.notification_id, DeliveryStatus.QUEUED, reason="retry_scheduled:smtp_421")

    again = await claim(ledger, invitation())

    assert (again.should_send, again.previous_status, again.attempts) == (False, DeliveryStatus.QUEUED, 1)
    assert again.awaiting_retry
    assert not again.in_flight


async def test_email_and_sms_to_one_guardian_are_separate_notifications(ledger: DeliveryLedger) -> None:
    email = await claim(ledger, invitation(channel="email"))
    sms = await claim(ledger, invitation(channel="sms"))

    assert email.should_send
    assert sms.should_send
    assert email.notification_id != sms.notification_id


async def test_the_same_event_id_from_another_source_of_the_school_is_another_notification(
    ledger: DeliveryLedger,
) -> None:
    from_visma = await claim(ledger, invitation())
    from_ist = await claim(ledger, replace(invitation(), source="urn:ist:extens:0301"))
    await ledger.record(from_visma.notification_id, DeliveryStatus.SENT)
    visma_again = await claim(ledger, invitation())

    assert from_ist.should_send
    assert from_ist.notification_id != from_visma.notification_id
    assert (visma_again.should_send, visma_again.previous_status) == (False, DeliveryStatus.SENT)
    stored = await ledger.get(from_ist.notification_id)
    assert stored is not None
    assert (stored.source_event_source, stored.source_event_id) == ("urn:ist:extens:0301", MEETING_CREATED)


async def test_record_replaces_reason_and_keeps_what_the_provider_told_us(ledger: DeliveryLedger) -> None:
    sms = await claim(ledger, invitation(channel="sms"))
    await ledger.record(sms.notification_id, DeliveryStatus.SENDING, reason="retrying:http_503")
    await ledger.record(
        sms.notification_id,
        DeliveryStatus.SENT,
        provider="linkmobility",
        provider_message_id="LM-7F3A9C21",
        segments=2,
        language="en",
    )
    await ledger.record(sms.notification_id, DeliveryStatus.DELIVERED)

    stored = await ledger.get(sms.notification_id)

    assert stored is not None
    assert (stored.status, stored.reason, stored.attempts) == (DeliveryStatus.DELIVERED, None, 2)
    assert (stored.provider, stored.provider_message_id, stored.segments, stored.language) == (
        "linkmobility",
        "LM-7F3A9C21",
        2,
        "en",
    )


async def test_record_of_an_unknown_notification_fails_and_stores_nothing(ledger: DeliveryLedger) -> None:
    with pytest.raises(UnknownNotificationError):
        await ledger.record("0123456789abcdef0123456789", DeliveryStatus.SENT)

    assert await ledger.get("0123456789abcdef0123456789") is None


async def test_an_overlong_reason_or_detail_is_cut_instead_of_losing_the_status(
    ledger: DeliveryLedger,
) -> None:
    first = await claim(ledger, invitation())

    await ledger.record(first.notification_id, DeliveryStatus.FAILED, reason="smtp_550:" + "x" * 400, detail="y" * 2000)

    stored = await ledger.get(first.notification_id)
    assert stored is not None
    assert stored.status is DeliveryStatus.FAILED
    assert stored.reason is not None
    assert stored.reason.startswith("smtp_550:")
    assert len(stored.reason) == 200
    assert stored.detail is not None
    assert len(stored.detail) == 500


async def test_begin_many_claims_new_keys_skips_sent_ones_and_answers_in_request_order(
    ledger: DeliveryLedger,
) -> None:
    already_sent = await claim(ledger, invitation("g-1002"))
    await ledger.record(already_sent.notification_id, DeliveryStatus.SENT)
    guardians = ["g-1003", "g-1002", "g-1001"]

    claims = await ledger.begin_many(
        [ClaimRequest(invitation(guardian), "meeting.created", SCHOOL, "nb") for guardian in guardians]
    )

    assert [(c.notification_id, c.should_send, c.previous_status) for c in claims] == [
        (notification_id_for(invitation("g-1003")), True, None),
        (already_sent.notification_id, False, DeliveryStatus.SENT),
        (notification_id_for(invitation("g-1001")), True, None),
    ]


async def test_a_key_repeated_in_one_batch_is_claimed_once(ledger: DeliveryLedger) -> None:
    request = ClaimRequest(invitation(), "meeting.created", SCHOOL, "nb")

    first, repeat = await ledger.begin_many([request, request])

    assert first.should_send
    assert (repeat.should_send, repeat.previous_status) == (False, DeliveryStatus.SENDING)
    [entry] = await ledger.history(MEETING_CREATED)
    assert len(entry.changes) == 1


async def test_a_digest_sized_batch_is_claimed_in_one_call_and_not_again(ledger: DeliveryLedger) -> None:
    digest = "01JD9B7N3P5R8T0V2X4Z6A8C0E"
    requests = [
        ClaimRequest(
            DeliveryKey(SCHOOL, "/visma-flyt/0301", digest, f"g-{n}", "email", "weekly_digest"),
            "digest.due",
            SCHOOL,
            "nb",
        )
        for n in range(1, 1201)  # more than one statement's worth of keys
    ]

    first = await ledger.begin_many(requests)
    second = await ledger.begin_many(requests)

    assert all(c.should_send for c in first)
    assert not any(c.should_send for c in second)
    assert len(await ledger.history(digest)) == 1200


async def test_begin_many_of_nothing_claims_nothing(ledger: DeliveryLedger) -> None:
    assert await ledger.begin_many([]) == []


async def test_a_clock_without_time_zone_is_refused(database_url: str) -> None:
    ledger = await DeliveryLedger.connect(database_url, clock=lambda: datetime(2025, 3, 7, 8, 30))
    try:
        with pytest.raises(ValueError, match="timezone-aware"):
            await claim(ledger, invitation())
    finally:
        await ledger.aclose()


async def test_outcomes_recorded_together_each_get_their_own_answer_and_history(ledger: DeliveryLedger) -> None:
    # Recorded at once, so they share group commits: the batched statements must keep every rule of record().
    sent, failed, again, settled = [await claim(ledger, invitation(f"g-{number}")) for number in range(4)]
    await ledger.record(settled.notification_id, DeliveryStatus.SENT, provider="smtp")

    answers = await asyncio.gather(
        ledger.record(sent.notification_id, DeliveryStatus.SENT, provider="smtp", provider_message_id="<m-1@x>"),
        ledger.record(failed.notification_id, DeliveryStatus.FAILED, reason="invalid_address", only_in_progress=True),
        ledger.record(again.notification_id, DeliveryStatus.SENDING),
        ledger.record(settled.notification_id, DeliveryStatus.FAILED, reason="late", only_in_progress=True),
        ledger.record("no-such-notification", DeliveryStatus.SENT),
        return_exceptions=True,
    )

    assert list(answers[:4]) == [True, True, True, False]
    assert isinstance(answers[4], UnknownNotificationError)
    stored = {
        claimed.notification_id: await ledger.get(claimed.notification_id) for claimed in (sent, failed, again, settled)
    }
    facts = {
        notification_id: (record.status, record.reason, record.provider, record.provider_message_id, record.attempts)
        for notification_id, record in stored.items()
        if record is not None
    }
    assert facts == {
        sent.notification_id: (DeliveryStatus.SENT, None, "smtp", "<m-1@x>", 1),
        failed.notification_id: (DeliveryStatus.FAILED, "invalid_address", None, None, 1),
        again.notification_id: (DeliveryStatus.SENDING, None, None, None, 2),
        settled.notification_id: (DeliveryStatus.SENT, None, "smtp", None, 1),
    }
    histories = {
        entry.delivery.notification_id: [change.status for change in entry.changes]
        for entry in await ledger.history(MEETING_CREATED)
    }
    assert histories == {
        sent.notification_id: [DeliveryStatus.SENDING, DeliveryStatus.SENT],
        failed.notification_id: [DeliveryStatus.SENDING, DeliveryStatus.FAILED],
        again.notification_id: [DeliveryStatus.SENDING, DeliveryStatus.SENDING],
        settled.notification_id: [DeliveryStatus.SENDING, DeliveryStatus.SENT],
    }


async def test_one_notification_recorded_twice_in_one_group_keeps_both_in_order(ledger: DeliveryLedger) -> None:
    first, repeated = [await claim(ledger, invitation(f"g-{number}")) for number in range(2)]

    # The first record finds the database free and goes alone; the two for `repeated` queue into one group.
    answers = await asyncio.gather(
        ledger.record(first.notification_id, DeliveryStatus.SENT),
        ledger.record(repeated.notification_id, DeliveryStatus.SENDING),
        ledger.record(repeated.notification_id, DeliveryStatus.SENT, provider="smtp"),
    )

    assert list(answers) == [True, True, True]
    stored = await ledger.get(repeated.notification_id)
    assert stored is not None
    assert (stored.status, stored.attempts, stored.provider) == (DeliveryStatus.SENT, 2, "smtp")
    (history,) = [entry for entry in await ledger.history(MEETING_CREATED) if entry.delivery == stored]
    assert [change.status for change in history.changes] == [
        DeliveryStatus.SENDING,
        DeliveryStatus.SENDING,
        DeliveryStatus.SENT,
    ]
