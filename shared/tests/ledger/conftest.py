"""Fixtures for the ledger tests: each database test runs on a SQLite file and on PostgreSQL.

The `database_url` fixture (root conftest.py) gives each test an empty SQLite file or a PostgreSQL database of
its own, created for the test and dropped afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from notify_shared.ledger import DeliveryLedger

LEASE_SECONDS = 300


class FakeClock:
    """A clock that stands still until a test moves it, so stored times and lease expiry are exact."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, *, seconds: float = 0, minutes: float = 0, hours: float = 0, days: float = 0) -> None:
        self.now += timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)


@pytest.fixture
def clock() -> FakeClock:
    # A Friday morning in Oslo (07:30 UTC), when the weekly digest goes out.
    return FakeClock(datetime(2025, 3, 7, 7, 30, tzinfo=UTC))


@pytest.fixture
async def ledger(database_url: str, clock: FakeClock) -> AsyncIterator[DeliveryLedger]:
    ledger = await DeliveryLedger.connect(database_url, clock=clock, lease_seconds=LEASE_SECONDS)
    try:
        yield ledger
    finally:
        await ledger.aclose()
