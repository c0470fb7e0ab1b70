"""A burst meets an SMS provider that says "429, try again shortly": the parents get their SMS, the retry queue
stays empty — the channel waits as one instead of each notification failing on its own.

A real ledger and dispatcher; the provider is scripted over `httpx.MockTransport` and refuses a fixed number of
requests (not a time window), so the outcome does not depend on the machine's speed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from notify_shared import samples
from notify_shared.channels import FileOutbox, SmsChannel, WebhookSmsChannel
from notify_shared.channels.throttle import ProviderThrottle, ThrottledSmsChannel, ThrottleLimits
from notify_shared.contract import Channel, Recipient
from notify_shared.delivery import CollectingStatusSink, Dispatcher, PlannedNotification, SourceEventRef
from notify_shared.ledger import DeliveryLedger, DeliveryStatus
from notify_shared.rendering import render_notification
from notify_shared.testing.clocks import SettableClock
from notify_shared.testing.http_providers import ScriptedProvider

GATEWAY_URL = "https://sms-gateway.example.no/v1/messages"


@dataclass
class BusyGateway:
    """Answers the first `refusals` requests with 429 and a Retry-After of 10 ms, every later one with 202."""

    refusals: int
    answered: int = 0
    refused: int = 0

    def respond(self, request: httpx.Request) -> httpx.Response:
        self.answered += 1
        if self.refused < self.refusals:
            self.refused += 1
            return httpx.Response(429, headers={"Retry-After": "0.01"}, json={"error": "too many requests"})
        return httpx.Response(202, json={"id": f"gw-{self.answered}"})


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[DeliveryLedger]:
    clock = SettableClock(datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    opened = await DeliveryLedger.connect(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}", clock=clock)
    try:
        yield opened
    finally:
        await opened.aclose()


def _dispatcher(ledger: DeliveryLedger, sms: SmsChannel, statuses: CollectingStatusSink, outbox: Path) -> Dispatcher:
    return Dispatcher(
        ledger=ledger,
        render=render_notification,
        email=FileOutbox(outbox),
        sms=sms,
        status_sink=statuses,
        email_sender="Bjølsen skole <no-reply@bjolsen.example.no>",
        concurrency=8,
    )


def _sms_plans(count: int) -> list[PlannedNotification]:
    guardians: list[Recipient] = [samples.sample_guardian(number) for number in range(1, count + 1)]
    event = samples.meeting_created(event_id="evt-burst", recipients=guardians)
    return [
        PlannedNotification(
            source=SourceEventRef(source=event.source, id=event.id, type=event.type),
            school=event.data.school,
            guardian=guardian,
            channel=Channel.SMS,
            template="meeting_invitation",
            context={"school": event.data.school, "meeting": event.data.meeting, "guardian": guardian},
        )
        for guardian in guardians
    ]


async def test_a_burst_that_meets_a_429_is_sent_in_full_and_leaves_the_retry_queue_empty(
    ledger: DeliveryLedger, tmp_path: Path
) -> None:
    gateway = BusyGateway(refusals=5)
    sms = ThrottledSmsChannel(
        WebhookSmsChannel(GATEWAY_URL, transport=ScriptedProvider(gateway.respond).transport()),
        ProviderThrottle("webhook", ThrottleLimits(max_in_flight=8, max_wait=30.0)),
    )
    statuses = CollectingStatusSink()
    dispatcher = _dispatcher(ledger, sms, statuses, tmp_path / "outbox")
    try:
        outcomes = await dispatcher.dispatch(_sms_plans(24))
    finally:
        await sms.aclose()

    assert [outcome.status for outcome in outcomes] == [DeliveryStatus.SENT] * 24
    assert await dispatcher.retry_queue.pending() == 0
    assert {report.status for report in statuses.reports} == {DeliveryStatus.SENT}, "no parent saw a `queued`"
    assert gateway.refused >= 1
    assert gateway.answered == 24 + gateway.refused


async def test_without_the_shared_gate_the_same_429s_each_fill_the_retry_queue(
    ledger: DeliveryLedger, tmp_path: Path
) -> None:
    # What the gate replaces: each refused SMS becomes a retry of its own, on its own backoff.
    gateway = BusyGateway(refusals=5)
    sms = WebhookSmsChannel(GATEWAY_URL, transport=ScriptedProvider(gateway.respond).transport())
    dispatcher = _dispatcher(ledger, sms, CollectingStatusSink(), tmp_path / "outbox")
    try:
        outcomes = await dispatcher.dispatch(_sms_plans(24))
    finally:
        await sms.aclose()

    assert [outcome.status for outcome in outcomes].count(DeliveryStatus.QUEUED) == 5
    assert await dispatcher.retry_queue.pending() == 5
