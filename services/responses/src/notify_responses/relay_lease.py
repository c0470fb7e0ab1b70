"""Which replica's relay publishes the outbox: the holder of a lease row in the shared database.

Two relays reading the same outbox would both publish each event (and a relay that took rows by `FOR UPDATE SKIP
LOCKED` would keep them apart, but could publish a later answer of a meeting before an earlier one that another
replica holds). So one relay at a time publishes, in outbox order; the others stand by and try for the lease at
every poll. The holder renews it well before it runs out; one that stops gives it up at once, and one that
crashed loses it when it runs out (`LEASE`), after which a standby takes over where the outbox stands.

Taking and renewing are one statement (`INSERT … ON CONFLICT DO UPDATE … WHERE` the lease is ours or has run
out), on SQLite and PostgreSQL alike, so two replicas can never both hold it. The replicas' clocks must agree to
well within the lease, as for every lease in the platform.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from notify_shared.ledger.database import create_schema
from notify_shared.ledger.database import metadata as _shared_metadata

metadata = sa.MetaData(naming_convention=_shared_metadata.naming_convention)

relay_leases = sa.Table(
    "response_relay_leases",
    metadata,
    sa.Column("name", sa.String(50), primary_key=True, comment="What the lease is for: the outbox"),
    sa.Column("holder", sa.String(200), nullable=False, comment="The relay (replica) that publishes"),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

LEASE = timedelta(seconds=30)
"""How long a lease lasts unless renewed: the longest a crashed holder keeps the others from publishing."""
RENEW_BEFORE = timedelta(seconds=20)
"""The holder renews once less than this is left: more than a publish may take (runtime.PUBLISH_TIMEOUT_SECONDS),
so the lease cannot run out while an event is being published."""


class RelayLease:
    """One relay's hold on the outbox lease."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        holder: str,
        name: str = "outbox",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._holder = holder
        self._name = name
        self._clock = clock
        self._held_until: datetime | None = None

    async def create_schema(self) -> None:
        await create_schema(self._engine, metadata)

    async def hold(self) -> bool:
        """True while this relay holds the lease: renewed when it runs low, taken when free or run out."""
        now = self._clock()
        if self._held_until is not None and self._held_until - now > RENEW_BEFORE:
            return True
        expires_at = now + LEASE
        async with self._engine.begin() as connection:
            insert: Any = (postgresql if connection.dialect.name == "postgresql" else sqlite).insert(relay_leases)
            statement = (
                insert.values(name=self._name, holder=self._holder, expires_at=expires_at)
                .on_conflict_do_update(
                    index_elements=[relay_leases.c.name],
                    set_={"holder": insert.excluded.holder, "expires_at": insert.excluded.expires_at},
                    where=sa.or_(relay_leases.c.holder == self._holder, relay_leases.c.expires_at <= now),
                )
                .returning(relay_leases.c.holder)
            )
            taken = (await connection.execute(statement)).first() is not None
        self._held_until = expires_at if taken else None
        return taken

    async def release(self) -> None:
        """Give the lease up, so a standby relay takes over at its next poll rather than when it runs out."""
        self._held_until = None
        async with self._engine.begin() as connection:
            await connection.execute(
                sa.update(relay_leases)
                .where(relay_leases.c.name == self._name, relay_leases.c.holder == self._holder)
                .values(expires_at=self._clock())
            )
