"""Two SMS providers behind a circuit breaker."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from notify_shared.channels import (
    CircuitBreaker,
    CircuitState,
    DeliveryReceipt,
    FailoverSmsChannel,
    OutgoingSms,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from notify_shared.testing.clocks import SettableClock


def _clock() -> SettableClock:
    return SettableClock(datetime(2026, 11, 20, 8, 0, tzinfo=UTC))


@dataclass
class Provider:
    name: str
    failure: str | None = None
    sent: list[str] = field(default_factory=list)

    async def send_sms(self, message: OutgoingSms) -> DeliveryReceipt:
        if self.failure == "invalid_number":
            raise PermanentDeliveryError("http_400")
        if self.failure is not None:
            status = int(self.failure[5:]) if self.failure[5:].isdigit() else None
            raise TransientDeliveryError(self.failure, http_status=status)
        self.sent.append(message.notification_id)
        return DeliveryReceipt(self.name, message.notification_id)

    async def aclose(self) -> None:
        return None


def _sms(number: int) -> OutgoingSms:
    return OutgoingSms(to_e164="+4790000001", sender_id="Bjolsen", text="Hei", notification_id=f"n-{number}")


@pytest.fixture
def clock() -> SettableClock:
    return _clock()


async def test_while_the_first_provider_fails_traffic_moves_to_the_second_and_back_after_the_cooldown(
    clock: SettableClock,
) -> None:
    first, second = Provider("first", failure="http_503"), Provider("second")
    channel = FailoverSmsChannel(
        first, second, CircuitBreaker(failure_threshold=3, cooldown=timedelta(seconds=30), clock=clock)
    )

    receipts = [await channel.send_sms(_sms(number)) for number in range(10)]

    # A 503 proves the first provider did not take the SMS, so each one went through the second at once.
    assert [receipt.provider for receipt in receipts] == ["second"] * 10
    assert channel.breaker.state == CircuitState.OPEN
    first.failure = None
    await channel.send_sms(_sms(10))
    assert first.sent == []  # still open: the first provider is left alone

    clock.now += timedelta(seconds=30)
    # (read again, not narrowed: the cooldown moved the state)
    assert str(channel.breaker.state) == CircuitState.HALF_OPEN.value
    await channel.send_sms(_sms(11))  # the trial goes to the first provider, and succeeds
    assert first.sent == ["n-11"]
    assert str(channel.breaker.state) == CircuitState.CLOSED.value


async def test_a_failed_trial_opens_the_circuit_again(clock: SettableClock) -> None:
    first, second = Provider("first", failure="http_503"), Provider("second")
    breaker = CircuitBreaker(failure_threshold=1, cooldown=timedelta(seconds=30), clock=clock)
    channel = FailoverSmsChannel(first, second, breaker)
    await channel.send_sms(_sms(1))
    clock.now += timedelta(seconds=31)

    await channel.send_sms(_sms(2))

    assert breaker.state is CircuitState.OPEN
    assert second.sent == ["n-1", "n-2"]


async def test_a_timeout_is_not_moved_to_the_second_provider_because_the_first_may_have_sent_it(
    clock: SettableClock,
) -> None:
    first, second = Provider("first", failure="http_timeout"), Provider("second")
    channel = FailoverSmsChannel(first, second, CircuitBreaker(failure_threshold=5, clock=clock))

    with pytest.raises(TransientDeliveryError, match="http_timeout"):
        await channel.send_sms(_sms(1))
    assert second.sent == []


async def test_a_500_is_retried_later_not_moved_because_the_provider_may_have_sent_it(clock: SettableClock) -> None:
    first, second = Provider("first", failure="http_500"), Provider("second")
    channel = FailoverSmsChannel(first, second, CircuitBreaker(failure_threshold=5, clock=clock))

    with pytest.raises(TransientDeliveryError, match="http_500"):
        await channel.send_sms(_sms(1))
    assert second.sent == []


async def test_a_trial_refused_as_an_invalid_number_closes_the_circuit_instead_of_wedging_it(
    clock: SettableClock,
) -> None:
    first, second = Provider("first", failure="http_503"), Provider("second")
    breaker = CircuitBreaker(failure_threshold=1, cooldown=timedelta(seconds=30), clock=clock)
    channel = FailoverSmsChannel(first, second, breaker)
    await channel.send_sms(_sms(1))
    clock.now += timedelta(seconds=31)
    first.failure = "invalid_number"

    with pytest.raises(PermanentDeliveryError):
        await channel.send_sms(_sms(2))  # the trial: the provider answered, so it works

    first.failure = None
    await channel.send_sms(_sms(3))
    assert first.sent == ["n-3"]
