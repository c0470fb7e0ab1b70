"""The daily cap on automatic SMS answers: one row per number and local day, taken before an answer is sent.

The primary key does the counting, so two replicas that take the same number's slot at the same moment cannot
both win: the insert of one of them finds the row and inserts nothing (`INSERT … ON CONFLICT DO NOTHING`, on
SQLite and PostgreSQL alike). A slot is taken before the SMS is handed to the delivery core; a crash between
the two sends nothing that day, never two.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from notify_shared.ledger.database import create_schema, insert_ignoring_conflicts
from notify_shared.ledger.database import metadata as _shared_metadata

metadata = sa.MetaData(naming_convention=_shared_metadata.naming_convention)

auto_replies = sa.Table(
    "response_auto_replies",
    metadata,
    sa.Column("phone", sa.String(40), primary_key=True, comment="E.164: the number the automatic answer went to"),
    sa.Column("day", sa.Date, primary_key=True, comment="The local day in the school's time zone"),
    sa.Column("kind", sa.String(20), nullable=False, comment="not_understood, nothing_open or recorded"),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
)


class DailyAutoReplyCap:
    """At most one automatic answer per number and day, for every replica sharing the database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_schema(self) -> None:
        await create_schema(self._engine, metadata)

    async def take(self, phone: str, day: date, *, kind: str, at: datetime) -> bool:
        """True when this call took `phone`'s slot for `day`; False when an answer went (or goes) out already."""
        async with self._engine.begin() as connection:
            inserted = await connection.execute(
                insert_ignoring_conflicts(auto_replies, connection.dialect.name)
                .values(phone=phone, day=day, kind=kind, sent_at=at)
                .returning(auto_replies.c.phone)
            )
            return inserted.first() is not None
