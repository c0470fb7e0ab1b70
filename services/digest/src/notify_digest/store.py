"""The digest service's tables: items waiting for a digest, digests, and notices waiting to go out.

Batch-on-write: every message or absence a guardian should read in a digest is stored as an item when it
arrives. When a digest slot passes, one UPDATE stamps each guardian's waiting items with that guardian's digest
id and one INSERT creates the digests — work done in the database, so memory does not grow with the number of
guardians. Digests and notices are then claimed in batches (`FOR UPDATE SKIP LOCKED` on PostgreSQL) with a
lease, so replicas share the work and a crashed replica's claims pass on; the delivery ledger, keyed by digest
or notice id, stops a second send.

Everything is kept per school: item and notice ids are derived from the school, the event's source and id, and
an absence notice merges only with an open notice of the same school, guardian, pupil and day, since guardian and
pupil ids come from each school's admin system and may be the same in another school.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from notify_shared.ledger import create_schema
from notify_shared.ledger.liveness import SenderLiveness, silent_owner

metadata = sa.MetaData()


class State(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


items = sa.Table(
    "digest_items",
    metadata,
    sa.Column("item_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(200), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("guardian_id", sa.String(200), nullable=False),
    sa.Column("period", sa.String(10), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("section", sa.String(300), nullable=False),
    sa.Column("sort_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("school", sa.Text, nullable=False),
    sa.Column("guardian", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("digest_id", sa.String(300), nullable=True),
    sa.Index("ix_digest_items_waiting", "school_id", "period", "digest_id"),
    sa.Index("ix_digest_items_digest", "digest_id"),
)

digests = sa.Table(
    "digests",
    metadata,
    sa.Column("digest_id", sa.String(300), primary_key=True),
    sa.Column("school_id", sa.String(200), nullable=False),
    sa.Column("guardian_id", sa.String(200), nullable=False),
    sa.Column("period", sa.String(10), nullable=False),
    sa.Column("slot_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
    sa.Column("claimed_by", sa.String(100), nullable=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("reason", sa.String(80), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_digests_open", "state", "not_before"),
)

notices = sa.Table(
    "digest_notices",
    metadata,
    sa.Column("notice_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("school_id", sa.String(200), nullable=False),
    sa.Column("guardian_id", sa.String(200), nullable=False),
    sa.Column("group_key", sa.String(300), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("school", sa.Text, nullable=False),
    sa.Column("guardian", sa.Text, nullable=False),
    sa.Column("claimed_by", sa.String(100), nullable=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_digest_notices_open", "state", "due_at"),
    sa.Index("ix_digest_notices_group", "school_id", "guardian_id", "group_key", "state"),
)


_IDS_PER_QUERY = 500
"""Digest ids per `IN (...)` list: well inside the bound-parameter limits of SQLite and asyncpg."""


def stable_id(*parts: str) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def as_utc(moment: datetime) -> datetime:
    """SQLite returns times without an offset; every stored time is UTC."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _insert(connection: AsyncConnection, table: sa.Table) -> sqlite.Insert | postgresql.Insert:
    # Both dialects' INSERTs know ON CONFLICT DO NOTHING; the generic one does not.
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


@dataclass(frozen=True)
class ClaimedNotice:
    notice_id: str
    kind: str
    group_key: str
    payload: str
    school: str
    guardian: str
    due_at: datetime


@dataclass(frozen=True)
class ClaimedDigest:
    digest_id: str
    school_id: str
    guardian_id: str
    period: str
    slot_at: datetime


@dataclass(frozen=True)
class DigestSettlement:
    """How one claimed digest ended."""

    digest_id: str
    state: State
    reason: str | None = None


@dataclass(frozen=True)
class ItemRow:
    kind: str
    section: str
    sort_at: datetime
    payload: str
    school: str
    guardian: str


class DigestStore:
    """Every method is one transaction."""

    def __init__(self, engine: AsyncEngine, *, liveness: SenderLiveness | None = None) -> None:
        self._engine = engine
        # With it, what a crashed replica had claimed is free once its heartbeat stops, not after the lease.
        self._liveness = liveness

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def _claim_ended(self, table: sa.Table, now: datetime) -> sa.ColumnElement[bool]:
        ended = table.c.lease_until < now
        if self._liveness is None:
            return ended
        return sa.or_(ended, silent_owner(table.c.claimed_by, self._liveness))

    async def create_schema(self) -> None:
        # The shared helper takes the schema lock, so replicas starting together on a new database do not race.
        await create_schema(self._engine, metadata)

    # --- intake ---

    async def add_items(self, rows: Sequence[dict[str, object]]) -> None:
        """Store items; one already stored (a redelivered event) is left as it is."""
        if not rows:
            return
        async with self._engine.begin() as connection:
            await connection.execute(_insert(connection, items).on_conflict_do_nothing(), list(rows))

    async def add_notice(self, row: dict[str, object]) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(_insert(connection, notices).on_conflict_do_nothing(), [row])

    async def merge_absence(
        self,
        *,
        school_id: str,
        guardian_id: str,
        group_key: str,
        new_notice: dict[str, object],
        merge: Callable[[str], str],
    ) -> None:
        """Add lessons to the guardian's open absence notice for this school, pupil and day, or open a new one.

        `merge(old_payload_json) -> new_payload_json` combines the lessons; the notice keeps its due time, so a
        burst of lesson-by-lesson events within the debounce window becomes one notice.
        """
        async with self._engine.begin() as connection:
            query = sa.select(notices.c.notice_id, notices.c.payload).where(
                notices.c.school_id == school_id,
                notices.c.guardian_id == guardian_id,
                notices.c.group_key == group_key,
                notices.c.state == State.PENDING.value,
                notices.c.due_at > new_notice["updated_at"],
            )
            if connection.dialect.name == "postgresql":
                query = query.with_for_update()
            found = (await connection.execute(query)).first()
            if found is None:
                await connection.execute(_insert(connection, notices).on_conflict_do_nothing(), [new_notice])
                return
            await connection.execute(
                notices.update()
                .where(notices.c.notice_id == found.notice_id)
                .values(payload=merge(found.payload), updated_at=new_notice["updated_at"])
            )

    # --- notices ---

    async def claim_notices(self, *, now: datetime, owner: str, lease: timedelta, limit: int) -> list[ClaimedNotice]:
        async with self._engine.begin() as connection:
            due = (
                sa.select(notices.c.notice_id)
                .where(
                    sa.or_(
                        sa.and_(notices.c.state == State.PENDING.value, notices.c.due_at <= now),
                        sa.and_(notices.c.state == State.CLAIMED.value, self._claim_ended(notices, now)),
                    )
                )
                .order_by(notices.c.due_at)
                .limit(limit)
            )
            if connection.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = [row.notice_id for row in await connection.execute(due)]
            if not ids:
                return []
            rows = await connection.execute(
                notices.update()
                .where(notices.c.notice_id.in_(ids))
                .values(state=State.CLAIMED.value, claimed_by=owner, lease_until=now + lease, updated_at=now)
                .returning(
                    notices.c.notice_id,
                    notices.c.kind,
                    notices.c.group_key,
                    notices.c.payload,
                    notices.c.school,
                    notices.c.guardian,
                    notices.c.due_at,
                )
            )
            return [
                ClaimedNotice(r.notice_id, r.kind, r.group_key, r.payload, r.school, r.guardian, as_utc(r.due_at))
                for r in rows
            ]

    async def settle_notice(self, notice_id: str, state: State, *, owner: str, now: datetime) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                notices.update()
                .where(notices.c.notice_id == notice_id, notices.c.claimed_by == owner)
                .values(state=state.value, lease_until=None, updated_at=now)
            )

    # --- digests ---

    async def waiting_schools(self) -> list[tuple[str, str, str]]:
        """(school id, time zone, period) of every school with items not yet in a digest."""
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                sa.select(items.c.school_id, items.c.timezone, items.c.period)
                .where(items.c.digest_id.is_(None))
                .distinct()
            )
            return [(row.school_id, row.timezone, row.period) for row in rows]

    async def assign(self, *, school_id: str, period: str, slot_at: datetime, now: datetime) -> int:
        """Put every item of the school and period that arrived before the slot into its guardian's digest."""
        digest_id = (
            items.c.school_id + sa.literal(":") + items.c.guardian_id + sa.literal(f":{period}:{slot_at.isoformat()}")
        )
        async with self._engine.begin() as connection:
            stamped = await connection.execute(
                items.update()
                .where(
                    items.c.school_id == school_id,
                    items.c.period == period,
                    items.c.digest_id.is_(None),
                    items.c.created_at <= slot_at,
                )
                .values(digest_id=digest_id)
            )
            if not stamped.rowcount:
                return 0
            new_digests = (
                sa.select(
                    items.c.digest_id,
                    items.c.school_id,
                    items.c.guardian_id,
                    items.c.period,
                    sa.literal(slot_at, sa.DateTime(timezone=True)),
                    sa.literal(State.PENDING.value),
                    sa.literal(now, sa.DateTime(timezone=True)),
                    sa.literal(now, sa.DateTime(timezone=True)),
                )
                .where(
                    items.c.school_id == school_id,
                    items.c.period == period,
                    items.c.digest_id.like(f"%:{period}:{slot_at.isoformat()}"),
                )
                .distinct()
            )
            await connection.execute(
                _insert(connection, digests)
                .from_select(
                    ["digest_id", "school_id", "guardian_id", "period", "slot_at", "state", "not_before", "updated_at"],
                    new_digests,
                )
                .on_conflict_do_nothing()
            )
            return stamped.rowcount

    async def claim_digests(self, *, now: datetime, owner: str, lease: timedelta, limit: int) -> list[ClaimedDigest]:
        async with self._engine.begin() as connection:
            due = (
                sa.select(digests.c.digest_id)
                .where(
                    sa.or_(
                        sa.and_(digests.c.state == State.PENDING.value, digests.c.not_before <= now),
                        sa.and_(digests.c.state == State.CLAIMED.value, self._claim_ended(digests, now)),
                    )
                )
                .order_by(digests.c.slot_at, digests.c.digest_id)
                .limit(limit)
            )
            if connection.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = [row.digest_id for row in await connection.execute(due)]
            if not ids:
                return []
            rows = await connection.execute(
                digests.update()
                .where(digests.c.digest_id.in_(ids))
                .values(state=State.CLAIMED.value, claimed_by=owner, lease_until=now + lease, updated_at=now)
                .returning(
                    digests.c.digest_id, digests.c.school_id, digests.c.guardian_id, digests.c.period, digests.c.slot_at
                )
            )
            return [ClaimedDigest(r.digest_id, r.school_id, r.guardian_id, r.period, as_utc(r.slot_at)) for r in rows]

    async def items_of(self, digest_id: str) -> list[ItemRow]:
        return (await self.items_of_many([digest_id])).get(digest_id, [])

    async def items_of_many(self, digest_ids: Sequence[str]) -> dict[str, list[ItemRow]]:
        """The items of each of a batch of digests, oldest first, read with one query per few hundred digests."""
        found: dict[str, list[ItemRow]] = {}
        async with self._engine.connect() as connection:
            for start in range(0, len(digest_ids), _IDS_PER_QUERY):
                rows = await connection.execute(
                    sa.select(
                        items.c.digest_id,
                        items.c.kind,
                        items.c.section,
                        items.c.sort_at,
                        items.c.payload,
                        items.c.school,
                        items.c.guardian,
                    )
                    .where(items.c.digest_id.in_(digest_ids[start : start + _IDS_PER_QUERY]))
                    .order_by(items.c.digest_id, items.c.sort_at, items.c.item_id)
                )
                for r in rows:
                    found.setdefault(r.digest_id, []).append(
                        ItemRow(r.kind, r.section, as_utc(r.sort_at), r.payload, r.school, r.guardian)
                    )
        return found

    async def settle_digest(
        self, digest_id: str, state: State, *, owner: str, now: datetime, reason: str | None = None
    ) -> None:
        await self.finish_digests([DigestSettlement(digest_id, state, reason)], [], owner=owner, now=now)

    async def postpone_digest(self, digest_id: str, *, owner: str, until: datetime, now: datetime) -> None:
        """Give a claimed digest back, not to be sent before `until` (the end of quiet hours)."""
        await self.finish_digests([], [(digest_id, until)], owner=owner, now=now)

    async def finish_digests(
        self,
        settlements: Sequence[DigestSettlement],
        postponed: Sequence[tuple[str, datetime]],
        *,
        owner: str,
        now: datetime,
    ) -> None:
        """Settle a batch's digests and give back those postponed to `until` (the end of quiet hours), in one
        transaction of two statements, each run once per row by the driver. A digest whose claim passed to
        another owner is left to it."""
        if not settlements and not postponed:
            return
        ours = sa.and_(digests.c.digest_id == sa.bindparam("b_digest_id"), digests.c.claimed_by == owner)
        async with self._engine.begin() as connection:
            if settlements:
                await connection.execute(
                    digests.update()
                    .where(ours)
                    .values(
                        state=sa.bindparam("b_state"), reason=sa.bindparam("b_reason"), lease_until=None, updated_at=now
                    ),
                    [{"b_digest_id": s.digest_id, "b_state": s.state.value, "b_reason": s.reason} for s in settlements],
                )
            if postponed:
                await connection.execute(
                    digests.update()
                    .where(ours)
                    .values(
                        state=State.PENDING.value,
                        not_before=sa.bindparam("b_until"),
                        claimed_by=None,
                        lease_until=None,
                        updated_at=now,
                    ),
                    [{"b_digest_id": digest_id, "b_until": until} for digest_id, until in postponed],
                )

    async def next_notice_due(self) -> datetime | None:
        """When the next notice falls due; digests are found by the periodic poll at their slots."""
        async with self._engine.connect() as connection:
            due = (
                await connection.execute(
                    sa.select(sa.func.min(notices.c.due_at)).where(notices.c.state == State.PENDING.value)
                )
            ).scalar_one_or_none()
        return as_utc(due) if due is not None else None

    async def counts(self) -> dict[str, int]:
        """Pending work, for tests and metrics: items waiting, digests by state, notices by state."""
        async with self._engine.connect() as connection:
            waiting = (
                await connection.execute(sa.select(sa.func.count()).where(items.c.digest_id.is_(None)))
            ).scalar_one()
            result = {"items_waiting": int(waiting)}
            for name, table in (("digests", digests), ("notices", notices)):
                rows = await connection.execute(sa.select(table.c.state, sa.func.count()).group_by(table.c.state))
                result |= {f"{name}_{row[0]}": int(row[1]) for row in rows}
            return result
