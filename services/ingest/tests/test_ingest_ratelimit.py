"""The per-key request rate and the per-address cap on wrong keys, on a clock the test moves."""

from __future__ import annotations

import pytest

from notify_ingest.ratelimit import FailedKeyLimits, KeyRateLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_key_may_make_its_burst_at_once_then_one_request_per_interval(clock: Clock) -> None:
    limits = KeyRateLimits(rate_per_second=0.5, burst=3, clock=clock)

    assert [limits.wait_for("school-a") for _ in range(3)] == [None, None, None]
    assert limits.wait_for("school-a") == pytest.approx(2.0)

    clock.now += 1.0
    assert limits.wait_for("school-a") == pytest.approx(1.0)
    clock.now += 1.0
    assert limits.wait_for("school-a") is None
    assert limits.wait_for("school-a") == pytest.approx(2.0)


def test_one_keys_requests_leave_another_keys_allowance_alone(clock: Clock) -> None:
    limits = KeyRateLimits(rate_per_second=1, burst=2, clock=clock)
    for _ in range(2):
        limits.wait_for("school-a")
    assert limits.wait_for("school-a") is not None
    assert limits.wait_for("school-b") is None


def test_a_quiet_key_saves_up_no_more_than_its_burst(clock: Clock) -> None:
    limits = KeyRateLimits(rate_per_second=1, burst=2, clock=clock)
    limits.wait_for("school-a")
    clock.now += 3600
    assert [limits.wait_for("school-a") for _ in range(3)] == [None, None, pytest.approx(1.0)]


def test_refused_requests_do_not_push_the_next_allowed_one_further_out(clock: Clock) -> None:
    limits = KeyRateLimits(rate_per_second=1, burst=1, clock=clock)
    limits.wait_for("school-a")
    for _ in range(10):
        assert limits.wait_for("school-a") == pytest.approx(1.0)
    clock.now += 1.0
    assert limits.wait_for("school-a") is None


def test_an_address_is_refused_after_its_limit_of_wrong_keys_until_the_oldest_leaves_the_window(
    clock: Clock,
) -> None:
    limits = FailedKeyLimits(limit=3, window_seconds=60, clock=clock)
    for _ in range(2):
        limits.failed("192.0.2.7")
        clock.now += 10
    assert limits.wait_for("192.0.2.7") is None
    limits.failed("192.0.2.7")  # the third, 20 s after the first

    assert limits.wait_for("192.0.2.7") == pytest.approx(40.0)
    assert limits.wait_for("198.51.100.1") is None

    clock.now += 40
    assert limits.wait_for("192.0.2.7") is None  # the first has left the window: two remain
    limits.failed("192.0.2.7")
    assert limits.wait_for("192.0.2.7") == pytest.approx(10.0)


def test_failures_spread_wider_than_the_window_never_refuse(clock: Clock) -> None:
    limits = FailedKeyLimits(limit=3, window_seconds=60, clock=clock)
    for _ in range(100):
        limits.failed("192.0.2.7")
        assert limits.wait_for("192.0.2.7") is None
        clock.now += 30


def test_many_addresses_are_forgotten_least_recent_first_past_the_cap(clock: Clock) -> None:
    limits = FailedKeyLimits(limit=1, window_seconds=60, clock=clock, max_tracked=2)
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        limits.failed(address)

    assert limits.wait_for("192.0.2.1") is None
    assert limits.wait_for("192.0.2.2") is not None
    assert limits.wait_for("192.0.2.3") is not None


def test_the_addresses_of_one_ipv6_subscriber_share_one_count_and_ipv4_addresses_do_not(clock: Clock) -> None:
    limits = FailedKeyLimits(limit=2, window_seconds=60, clock=clock)
    limits.failed("2001:db8:7:1::1")
    limits.failed("2001:db8:7:1:ffff:0:0:2")
    assert limits.wait_for("2001:db8:7:1::3") is not None
    assert limits.wait_for("2001:db8:7:2::1") is None

    limits.failed("192.0.2.1")
    limits.failed("::ffff:192.0.2.1")  # the same IPv4 client, as a dual-stack socket reports it
    assert limits.wait_for("192.0.2.1") is not None
    assert limits.wait_for("192.0.2.2") is None
