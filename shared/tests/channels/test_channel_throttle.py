"""A provider that is slow or asks us to slow down (HTTP 429, SMTP 421) is one gate for the whole process.

Time is simulated: the throttle's clock and sleep are a `FakeTime`, so a pause of minutes passes at once and
nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx
import pytest
from pydantic import SecretStr

from notify_shared.channels import (
    CircuitBreaker,
    DeliveryReceipt,
    FailoverSmsChannel,
    FileOutbox,
    OutgoingSms,
    TransientDeliveryError,
    WebhookSmsChannel,
)
from notify_shared.channels.provider_http import error_for_status
from notify_shared.channels.throttle import (
    PAUSED,
    ProviderThrottle,
    ThrottledEmailChannel,
    ThrottledSmsChannel,
    ThrottleLimits,
)
from notify_shared.settings import ServiceSettings
from notify_shared.testing.http_providers import ScriptedProvider
from notify_shared.wiring import build_email_channel, build_sms_channel

MakeSms = Callable[..., OutgoingSms]

GATEWAY_URL = "https://sms-gateway.example.no/v1/messages"

_T = TypeVar("_T")


@dataclass
class FakeTime:
    """A monotonic clock that moves only when every send is waiting: then straight to the next wake-up."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)
    _sleepers: list[tuple[float, asyncio.Future[None]]] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, woken))
        await woken

    async def run(self, work: Awaitable[_T]) -> _T:
        """Run `work` to its end, letting simulated time pass whenever nothing else can happen."""
        task = asyncio.ensure_future(work)
        while not task.done():
            for _ in range(200):  # everything that can run without time passing (no real I/O here) runs first
                await asyncio.sleep(0)
            if task.done() or not self._sleepers:
                continue
            self.now = max(self.now, min(at for at, _ in self._sleepers))
            due = [(at, woken) for at, woken in self._sleepers if at <= self.now]
            self._sleepers = [sleeper for sleeper in self._sleepers if sleeper not in due]
            for _, woken in due:
                woken.set_result(None)
        return task.result()


def throttle(
    time: FakeTime, *, max_in_flight: int = 10, default_pause: float = 5.0, max_wait: float = 30.0
) -> ProviderThrottle:
    return ProviderThrottle(
        "gateway",
        ThrottleLimits(max_in_flight=max_in_flight, default_pause=default_pause, max_wait=max_wait),
        clock=time.clock,
        sleep=time.sleep,
    )


@dataclass
class OverloadedGateway:
    """An SMS gateway that answers 429 with `Retry-After` until `busy_until` on the fake clock, then 202."""

    time: FakeTime
    busy_until: float
    retry_after: str
    requests_at: list[tuple[float, int]] = field(default_factory=list)

    def respond(self, request: httpx.Request) -> httpx.Response:
        if self.time.now < self.busy_until:
            status = 429
            response = httpx.Response(429, headers={"Retry-After": self.retry_after}, json={"error": "slow down"})
        else:
            status = 202
            response = httpx.Response(202, json={"id": f"gw-{len(self.requests_at)}"})
        self.requests_at.append((self.time.now, status))
        return response


@pytest.fixture
async def gateway_channel() -> AsyncIterator[Callable[[OverloadedGateway, ProviderThrottle], ThrottledSmsChannel]]:
    channels: list[ThrottledSmsChannel] = []

    def open_channel(gateway: OverloadedGateway, gate: ProviderThrottle) -> ThrottledSmsChannel:
        provider = ScriptedProvider(gateway.respond)
        channel = ThrottledSmsChannel(
            WebhookSmsChannel(GATEWAY_URL, auth_token=SecretStr("gateway-token"), transport=provider.transport()),
            gate,
        )
        channels.append(channel)
        return channel

    yield open_channel
    for channel in channels:
        await channel.aclose()


async def test_a_429_pauses_every_sms_of_the_channel_and_then_all_go_out_without_the_retry_queue(
    gateway_channel: Callable[[OverloadedGateway, ProviderThrottle], ThrottledSmsChannel], make_absence_sms: MakeSms
) -> None:
    time = FakeTime()
    gateway = OverloadedGateway(time, busy_until=2.0, retry_after="2")
    channel = gateway_channel(gateway, throttle(time, max_in_flight=10))

    # Twenty reminders fall due at once; ten fit in flight.
    receipts = await time.run(asyncio.gather(*(channel.send_sms(make_absence_sms(number)) for number in range(1, 21))))

    assert len(receipts) == 20
    assert all(receipt.provider_message_id for receipt in receipts)
    refused = [at for at, status in gateway.requests_at if status == 429]
    accepted = [at for at, status in gateway.requests_at if status == 202]
    # At most the ten already in flight meet the gateway's "no"; every later one waits for the pause instead.
    assert 1 <= len(refused) <= 10
    assert set(refused) == {0.0}
    assert len(accepted) == 20
    assert min(accepted) >= 2.0, "nothing was sent again before the Retry-After had passed"
    # The pause was shared: everyone waited the same two seconds, not a backoff each.
    assert time.now == 2.0


@dataclass
class CountingSmsProvider:
    """Counts how many sends are inside it at once; answers `slow_down` to the sends numbered in `refuse`."""

    name: str = "counting"
    refuse: set[int] = field(default_factory=set)
    calls: int = 0
    inside: int = 0
    most_inside: int = 0

    async def send_sms(self, message: OutgoingSms) -> DeliveryReceipt:
        self.calls += 1
        number = self.calls
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        try:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            if number in self.refuse:
                raise TransientDeliveryError("smtp_421", slow_down=True)
            return DeliveryReceipt(provider="counting", provider_message_id=str(number))
        finally:
            self.inside -= 1

    async def aclose(self) -> None:
        return None


async def test_after_a_slow_down_the_channel_sends_half_as_many_at_once_and_grows_back_with_successes(
    make_absence_sms: MakeSms,
) -> None:
    time = FakeTime()
    gate = throttle(time, max_in_flight=8, default_pause=5.0)
    provider = CountingSmsProvider(refuse={1})
    channel = ThrottledSmsChannel(provider, gate)

    await time.run(asyncio.gather(*(channel.send_sms(make_absence_sms(number)) for number in range(1, 9))))

    # No Retry-After (SMTP never has one): the default pause; then at most half as many at once.
    assert time.now == 5.0
    assert gate.allowed_in_flight == 4
    provider.most_inside = 0
    await time.run(asyncio.gather(*(channel.send_sms(make_absence_sms(number)) for number in range(9, 25))))
    # Four at once at first, one more after each round of four, five, … successes: never the eight of before.
    assert 4 <= provider.most_inside < 8
    # Each round of successes adds one place, until the configured limit is back.
    for number in range(25, 25 + 40):
        await time.run(channel.send_sms(make_absence_sms(number)))
    assert gate.allowed_in_flight == 8


async def test_a_burst_refused_all_at_once_halves_the_parallelism_once_not_once_per_refusal(
    make_absence_sms: MakeSms, caplog: pytest.LogCaptureFixture
) -> None:
    time = FakeTime()
    gate = throttle(time, max_in_flight=8)
    provider = CountingSmsProvider(refuse={1, 2, 3, 4, 5, 6})
    channel = ThrottledSmsChannel(provider, gate)

    await time.run(asyncio.gather(*(channel.send_sms(make_absence_sms(number)) for number in range(1, 9))))

    # Six answers to sends that were all out before the first came back: one slow-down (8 → 4), not six (→ 1).
    assert provider.most_inside == 8
    slow_downs = [record.getMessage() for record in caplog.records if "asked to slow down" in record.getMessage()]
    assert slow_downs == ["gateway asked to slow down: pausing it for 5.0 s, then at most 4 sends at a time"]
    assert gate.allowed_in_flight >= 4


async def test_a_pause_longer_than_the_wait_limit_sends_the_sms_to_the_retry_queue_and_spares_the_provider(
    gateway_channel: Callable[[OverloadedGateway, ProviderThrottle], ThrottledSmsChannel], make_absence_sms: MakeSms
) -> None:
    time = FakeTime()
    gateway = OverloadedGateway(time, busy_until=600.0, retry_after="600")
    channel = gateway_channel(gateway, throttle(time, max_wait=30.0))

    with pytest.raises(TransientDeliveryError) as first:
        await channel.send_sms(make_absence_sms(1))
    with pytest.raises(TransientDeliveryError) as second:
        await channel.send_sms(make_absence_sms(2))

    # The retry queue holds both until the pause ends (the dispatcher honours retry_after).
    assert (first.value.reason, first.value.retry_after) == ("http_429", 600.0)
    assert (second.value.reason, second.value.retry_after) == (PAUSED, 600.0)
    assert len(gateway.requests_at) == 1, "the second SMS was not offered to a provider that asked for a pause"
    assert time.sleeps == []

    time.now = 600.0
    receipt = await channel.send_sms(make_absence_sms(3))
    assert receipt.provider_message_id is not None


async def test_a_provider_that_always_says_retry_now_is_not_called_in_a_tight_loop(
    make_absence_sms: MakeSms,
) -> None:
    time = FakeTime()
    provider = ScriptedProvider(lambda request: httpx.Response(429, headers={"Retry-After": "0"}))
    channel = ThrottledSmsChannel(WebhookSmsChannel(GATEWAY_URL, transport=provider.transport()), throttle(time))
    try:
        with pytest.raises(TransientDeliveryError) as failure:
            await time.run(channel.send_sms(make_absence_sms(1)))
    finally:
        await channel.aclose()

    assert failure.value.reason == "http_429"
    assert len(provider.requests) == 3, "three tries in the process, then the retry queue's backoff"


async def test_a_failure_about_one_message_does_not_pause_the_channel(make_absence_sms: MakeSms) -> None:
    time = FakeTime()
    gate = throttle(time)
    responses = iter([httpx.Response(500), httpx.Response(408), httpx.Response(202, json={"id": "ok"})])
    provider = ScriptedProvider(lambda request: next(responses))
    channel = ThrottledSmsChannel(WebhookSmsChannel(GATEWAY_URL, transport=provider.transport()), gate)
    try:
        for expected in ("http_500", "http_408"):
            with pytest.raises(TransientDeliveryError) as failure:
                await channel.send_sms(make_absence_sms(1))
            assert failure.value.reason == expected
        assert (await channel.send_sms(make_absence_sms(2))).provider_message_id == "ok"
    finally:
        await channel.aclose()

    assert gate.pause_remaining() == 0
    assert gate.allowed_in_flight == 10
    assert time.sleeps == []


@pytest.mark.parametrize(
    ("status", "retry_after", "slows_down"),
    [
        (429, "3", True),
        (429, None, True),
        (503, "120", True),
        (503, None, False),
        (500, "10", False),
        (408, None, False),
    ],
)
def test_which_http_answers_ask_the_whole_channel_to_slow_down(
    status: int, retry_after: str | None, slows_down: bool
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    error = error_for_status(httpx.Response(status, headers=headers))

    assert isinstance(error, TransientDeliveryError)
    assert error.slow_down is slows_down


async def test_while_the_first_sms_provider_is_paused_sms_go_through_the_second_at_once(
    make_absence_sms: MakeSms,
) -> None:
    time = FakeTime()
    first = ScriptedProvider(lambda request: httpx.Response(429, headers={"Retry-After": "900"}))
    second = ScriptedProvider(lambda request: httpx.Response(202, json={"id": "second"}))
    channel = FailoverSmsChannel(
        ThrottledSmsChannel(WebhookSmsChannel(GATEWAY_URL, transport=first.transport()), throttle(time)),
        ThrottledSmsChannel(
            WebhookSmsChannel("https://backup-gateway.example.no/sms", transport=second.transport()), throttle(time)
        ),
        CircuitBreaker(failure_threshold=100),
    )
    try:
        receipts = [await channel.send_sms(make_absence_sms(number)) for number in range(1, 4)]
    finally:
        await channel.aclose()

    assert [receipt.provider_message_id for receipt in receipts] == ["second"] * 3
    assert len(first.requests) == 1, "the paused provider was asked once, and then left alone"
    assert len(second.requests) == 3


def test_each_provider_gets_the_connection_limit_its_settings_give(tmp_path: object) -> None:
    settings = ServiceSettings(
        smtp_host="smtp.example.no",
        smtp_pool_size=3,
        sms_provider="webhook",
        sms_webhook_url=GATEWAY_URL,
        sms_max_connections=7,
        provider_pause_default=12,
        provider_pause_max_wait=20,
    )
    outbox = FileOutbox(settings.outbox_dir)

    email = build_email_channel(settings, outbox)
    sms = build_sms_channel(settings, outbox)

    assert isinstance(email, ThrottledEmailChannel)
    assert isinstance(sms, ThrottledSmsChannel)
    assert (email.name, email.throttle.allowed_in_flight) == ("smtp", 3)
    assert (sms.name, sms.throttle.allowed_in_flight) == ("webhook", 7)


def test_the_file_outbox_has_no_provider_to_throttle() -> None:
    settings = ServiceSettings()
    outbox = FileOutbox(settings.outbox_dir)

    assert build_email_channel(settings, outbox) is outbox
    assert build_sms_channel(settings, outbox) is outbox
