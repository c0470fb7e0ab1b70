"""Fixtures for the ledger tests: each database test runs on a SQLite file and on PostgreSQL.

PostgreSQL comes from `NOTIFY_TEST_DATABASE_URL` (a `postgresql+asyncpg://` URL whose user may create
databases); without it the PostgreSQL variants are skipped. Every PostgreSQL test gets a database of its own,
created next to the configured one and dropped afterwards, so tests never see each other's rows, even when run
in parallel or next to other suites using the same server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import NullPool, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from notify_shared.ledger import DeliveryLedger

POSTGRES_URL_VARIABLE = "NOTIFY_TEST_DATABASE_URL"
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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file in a directory not yet created, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'state' / 'notify.db'}"
        return
    configured = os.environ.get(POSTGRES_URL_VARIABLE)
    if not configured:
        pytest.skip(f"PostgreSQL variant needs {POSTGRES_URL_VARIABLE}=postgresql+asyncpg://user@host:port/db")
    async for url in _fresh_postgres_database(configured):
        yield url


async def _fresh_postgres_database(configured: str) -> AsyncIterator[str]:
    server = make_url(configured)
    if server.drivername != "postgresql+asyncpg":
        pytest.fail(f"{POSTGRES_URL_VARIABLE} must be a postgresql+asyncpg:// URL, not {server.drivername}://")
    name = f"ledger_test_{uuid.uuid4().hex[:16]}"
    # CREATE/DROP DATABASE refuse to run inside a transaction, hence AUTOCOMMIT; NullPool leaves nothing open.
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture
async def ledger(database_url: str, clock: FakeClock) -> AsyncIterator[DeliveryLedger]:
    ledger = await DeliveryLedger.connect(database_url, clock=clock, lease_seconds=LEASE_SECONDS)
    try:
        yield ledger
    finally:
        await ledger.aclose()
