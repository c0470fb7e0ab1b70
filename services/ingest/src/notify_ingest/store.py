"""The accepted event ids: what makes a repeated POST publish nothing new, across restarts and replicas.

Each id is recorded *before* it is published and marked `published` after Kafka confirmed it:

1. `claim` inserts the id as `pending`, with a lease (`claimed_until`). Only the caller whose statement created
   the row, or took over a `pending` row whose lease ran out, may publish (`ClaimKind.PUBLISH`).
2. The caller publishes, then `mark_published`; on a failed publish it calls `release`, so that the client's
   retry may publish at once.

A crash between publish and `mark_published` leaves the row `pending`: a retry of the same id after the lease
publishes it again. Kafka then holds the event twice, which the consuming services absorb, since they dedupe by
CloudEvents source and id (their delivery ledger). The opposite order (mark, then publish) could lose an event instead.

An id is accepted per school and source (`AcceptedId`): a CloudEvents id is only unique per source, and one
school posting an id first must never make another school's own event with that id a duplicate or a conflict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from notify_shared.ledger.database import (
    create_engine,
    create_schema,
    insert_ignoring_conflicts,
    read_transaction,
    utc_from_db,
)
from notify_shared.ledger.database import metadata as _shared_metadata

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware."""

PENDING = "pending"
PUBLISHED = "published"

# Its own MetaData (with the shared naming convention): the ingest database holds this table and nothing else.
metadata = sa.MetaData(naming_convention=_shared_metadata.naming_convention)

ingested_events = sa.Table(
    "ingested_events",
    metadata,
    sa.Column("school_id", sa.String(200), primary_key=True, comment="The school whose API key posted it"),
    sa.Column("source", sa.String(500), primary_key=True, comment="The CloudEvents source"),
    sa.Column(
        "event_id", sa.String(200), primary_key=True, comment="The CloudEvents id: with school and source, the key"
    ),
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column(
        "digest",
        sa.String(64),
        nullable=False,
        comment="SHA-256 of the record value published; the same id with other content is refused",
    ),
    sa.Column("state", sa.String(20), nullable=False, comment="pending, then published"),
    sa.Column("attempts", sa.Integer, nullable=False, comment="Publishes started for this id"),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column(
        "claimed_until",
        sa.DateTime(timezone=True),
        nullable=True,
        comment="While pending: no other request publishes the id before this; NULL once released",
    ),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("topic", sa.String(300), nullable=False),
    sa.Column("kafka_partition", sa.Integer, nullable=True),
    sa.Column("kafka_offset", sa.BigInteger, nullable=True),
    sa.Index("ix_ingested_events_school_id_received_at", "school_id", "received_at"),
)


@dataclass(frozen=True)
class AcceptedId:
    """What identifies one posted event: its CloudEvents id, within its source, within the posting school."""

    school_id: str
    source: str
    event_id: str

    def matches(self) -> sa.ColumnElement[bool]:
        return sa.and_(
            ingested_events.c.school_id == self.school_id,
            ingested_events.c.source == self.source,
            ingested_events.c.event_id == self.event_id,
        )


class ClaimKind(StrEnum):
    PUBLISH = "publish"
    """This caller holds the claim: publish, then `mark_published` (or `release` on failure)."""
    PUBLISHED = "published"
    """Already published: a duplicate."""
    IN_FLIGHT = "in_flight"
    """Another request holds a live claim; ask again later (it may have crashed: its lease then runs out)."""
    CONFLICT = "conflict"
    """The id was accepted from this school and source with other content."""


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    event_type: str
    """The type stored for the id (for a duplicate: the type first accepted)."""
    retry_after_seconds: float = 0.0
    """For `IN_FLIGHT`: how long until the holder's lease runs out."""


@dataclass(frozen=True)
class StoredEvent:
    """One accepted id as stored; times are timezone-aware UTC."""

    event_id: str
    event_type: str
    school_id: str
    source: str
    digest: str
    state: str
    attempts: int
    received_at: datetime
    claimed_until: datetime | None
    published_at: datetime | None
    topic: str
    partition: int | None
    offset: int | None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AcceptedEvents:
    """The `ingested_events` table on SQLite or PostgreSQL (see `notify_shared.ledger.database`)."""

    def __init__(self, engine: AsyncEngine, *, lease_seconds: float, clock: Clock = _utc_now) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self._engine = engine
        self._lease = timedelta(seconds=lease_seconds)
        self._clock = clock
        self._insert_if_new = insert_ignoring_conflicts(ingested_events, engine.dialect.name)
        self._owns_engine = False

    @classmethod
    async def connect(cls, url: str, *, lease_seconds: float, clock: Clock = _utc_now) -> Self:
        """Open the database at `url`, create the table if missing, and own the engine."""
        engine = create_engine(url)
        try:
            await create_schema(engine, metadata)
            store = cls(engine, lease_seconds=lease_seconds, clock=clock)
        except BaseException:
            await engine.dispose()
            raise
        store._owns_engine = True
        return store

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def aclose(self) -> None:
        if self._owns_engine:
            await self._engine.dispose()

    async def claim(self, accepted: AcceptedId, *, event_type: str, digest: str, topic: str) -> Claim:
        """Decide, in one transaction, whether this caller publishes the event `accepted` names now."""
        now = self._now()
        async with self._engine.begin() as connection:
            inserted = await connection.execute(
                self._insert_if_new.values(
                    school_id=accepted.school_id,
                    source=accepted.source,
                    event_id=accepted.event_id,
                    event_type=event_type,
                    digest=digest,
                    state=PENDING,
                    attempts=1,
                    received_at=now,
                    claimed_until=now + self._lease,
                    topic=topic,
                ).returning(ingested_events.c.event_id)
            )
            if inserted.first() is not None:
                return Claim(ClaimKind.PUBLISH, event_type)
            row = (
                await connection.execute(
                    sa.select(
                        ingested_events.c.event_type,
                        ingested_events.c.digest,
                        ingested_events.c.state,
                        ingested_events.c.claimed_until,
                    ).where(accepted.matches())
                )
            ).one()
            if row.digest != digest:
                return Claim(ClaimKind.CONFLICT, row.event_type)
            if row.state == PUBLISHED:
                return Claim(ClaimKind.PUBLISHED, row.event_type)
            # Pending: take it over if its holder released it or went silent. The condition is re-checked by
            # the UPDATE itself, so of two requests that both saw it claimable only one gets the row (on
            # PostgreSQL the second UPDATE waits for the first, then finds the lease renewed).
            taken = await connection.execute(
                sa.update(ingested_events)
                .where(
                    accepted.matches(),
                    ingested_events.c.state == PENDING,
                    sa.or_(ingested_events.c.claimed_until.is_(None), ingested_events.c.claimed_until <= now),
                )
                .values(claimed_until=now + self._lease, attempts=ingested_events.c.attempts + 1)
                .returning(ingested_events.c.event_id)
            )
            if taken.first() is not None:
                return Claim(ClaimKind.PUBLISH, row.event_type)
            remaining = (utc_from_db(row.claimed_until) - now).total_seconds() if row.claimed_until else 0.0
            return Claim(ClaimKind.IN_FLIGHT, row.event_type, retry_after_seconds=max(remaining, 0.0))

    async def mark_published(self, accepted: AcceptedId, *, partition: int | None, offset: int | None) -> None:
        """Kafka confirmed the event: later requests with its id are duplicates."""
        async with self._engine.begin() as connection:
            await connection.execute(
                sa.update(ingested_events)
                .where(accepted.matches())
                .values(
                    state=PUBLISHED,
                    claimed_until=None,
                    published_at=self._now(),
                    kafka_partition=partition,
                    kafka_offset=offset,
                )
            )

    async def release(self, accepted: AcceptedId) -> None:
        """The publish failed: give up the claim so that a retry may publish at once."""
        async with self._engine.begin() as connection:
            await connection.execute(
                sa.update(ingested_events)
                .where(accepted.matches(), ingested_events.c.state == PENDING)
                .values(claimed_until=None)
            )

    async def get(self, accepted: AcceptedId) -> StoredEvent | None:
        async with read_transaction(self._engine) as connection:
            row = (await connection.execute(sa.select(ingested_events).where(accepted.matches()))).one_or_none()
        return None if row is None else _stored_from(row)

    def _now(self) -> datetime:
        moment = self._clock()
        if moment.tzinfo is None:
            raise ValueError("the clock must return timezone-aware times")
        return moment.astimezone(UTC)


def _stored_from(row: sa.Row[Any]) -> StoredEvent:
    return StoredEvent(
        event_id=row.event_id,
        event_type=row.event_type,
        school_id=row.school_id,
        source=row.source,
        digest=row.digest,
        state=row.state,
        attempts=row.attempts,
        received_at=utc_from_db(row.received_at),
        claimed_until=None if row.claimed_until is None else utc_from_db(row.claimed_until),
        published_at=None if row.published_at is None else utc_from_db(row.published_at),
        topic=row.topic,
        partition=row.kafka_partition,
        offset=row.kafka_offset,
    )
