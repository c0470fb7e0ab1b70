"""Databases for tests: a fresh, empty PostgreSQL database per test, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import NullPool, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine


@asynccontextmanager
async def fresh_postgres_database(server_url: str, *, prefix: str = "notify_test") -> AsyncIterator[str]:
    """Create an empty database next to the one in `server_url` and yield its URL; drop it on exit.

    Tests that share one server never see each other's rows this way, even in parallel.
    """
    server = make_url(server_url)
    if server.drivername != "postgresql+asyncpg":
        raise ValueError(f"need a postgresql+asyncpg:// URL, not {server.drivername}://")
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
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
