"""The schedule of record: every reminder, pending or settled, in the service's database.

APScheduler only wakes the service up; what is due, and who sends it, is decided here. Claiming uses
`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas firing at the same moment take disjoint rows; on SQLite
(one replica) `BEGIN IMMEDIATE` serialises the claim. A claim holds for a lease: rows claimed by a replica that
died are claimed again once it expires, and the delivery ledger then stops a second send.

Meetings, invitations and reminder ids are all keyed by school: meeting and guardian ids come from each school's
admin system, so another school's meeting with the same id is another meeting, never this one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from notify_shared.ledger import create_schema
from notify_shared.ledger.liveness import SenderLiveness, silent_owner

metadata = sa.MetaData()


class ReminderState(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"
    """The meeting moved or the guardian's channels changed: another reminder replaces this one."""


OPEN_STATES = (ReminderState.PENDING.value, ReminderState.CLAIMED.value)

reminders = sa.Table(
    "reminders",
    metadata,
    sa.Column("reminder_id", sa.String(64), primary_key=True),
    sa.Column("meeting_id", sa.String(200), nullable=False),
    sa.Column("school_id", sa.String(200), nullable=False),
    sa.Column("guardian_id", sa.String(200), nullable=False),
    sa.Column("channel", sa.String(10), nullable=False),
    sa.Column("rule_id", sa.String(40), nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("reason", sa.String(60), nullable=True),
    sa.Column("claimed_by", sa.String(100), nullable=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    # Everything needed to render at firing time (school, meeting, guardian, moved), as JSON.
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_reminders_open_due", "state", "due_at"),
    sa.Index("ix_reminders_school_meeting", "school_id", "meeting_id"),
)

reminder_meetings = sa.Table(
    "reminder_meetings",
    metadata,
    sa.Column("school_id", sa.String(200), primary_key=True),
    sa.Column("meeting_id", sa.String(200), primary_key=True),
    sa.Column("first_starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("first_location", sa.Text, nullable=False),
    sa.Column("last_event_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("cancelled", sa.Boolean, nullable=False),
)

reminder_invitations = sa.Table(
    "reminder_invitations",
    metadata,
    sa.Column("school_id", sa.String(200), primary_key=True),
    sa.Column("meeting_id", sa.String(200), primary_key=True),
    sa.Column("guardian_id", sa.String(200), primary_key=True),
    sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
)


def reminder_id_for(school_id: str, meeting_id: str, guardian_id: str, rule_id: str, starts_at: datetime) -> str:
    """Stable id of one reminder. It includes the start: a meeting that moves gets new reminders."""
    parts = [school_id, meeting_id, guardian_id, rule_id, starts_at.astimezone(UTC).isoformat()]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def as_utc(moment: datetime) -> datetime:
    """Times from SQLite come back without an offset; every stored time is UTC."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ReminderRow:
    reminder_id: str
    meeting_id: str
    school_id: str
    guardian_id: str
    channel: str
    rule_id: str
    starts_at: datetime
    due_at: datetime
    state: ReminderState
    reason: str | None
    payload: str

    @classmethod
    def from_row(cls, row: sa.Row[tuple[object, ...]]) -> ReminderRow:
        mapping = row._mapping
        return cls(
            reminder_id=mapping["reminder_id"],
            meeting_id=mapping["meeting_id"],
            school_id=mapping["school_id"],
            guardian_id=mapping["guardian_id"],
            channel=mapping["channel"],
            rule_id=mapping["rule_id"],
            starts_at=as_utc(mapping["starts_at"]),
            due_at=as_utc(mapping["due_at"]),
            state=ReminderState(mapping["state"]),
            reason=mapping["reason"],
            payload=mapping["payload"],
        )


@dataclass(frozen=True)
class Settlement:
    """How one claimed reminder ended."""

    reminder_id: str
    state: ReminderState
    reason: str | None = None


@dataclass(frozen=True)
class MeetingMemory:
    """What the store remembers of a meeting across events."""

    first_starts_at: datetime
    first_location: str
    last_event_time: datetime | None
    cancelled: bool


class ReminderStore:
    """Reads and writes the schedule; every method is one transaction."""

    def __init__(self, engine: AsyncEngine, *, liveness: SenderLiveness | None = None) -> None:
        self._engine = engine
        # With it, what a crashed replica had claimed is free once its heartbeat stops, not after the lease.
        self._liveness = liveness

    def _claim_ended(self, table: sa.Table, now: datetime) -> sa.ColumnElement[bool]:
        ended = table.c.lease_until < now
        if self._liveness is None:
            return ended
        return sa.or_(ended, silent_owner(table.c.claimed_by, self._liveness))

    async def create_schema(self) -> None:
        # The shared helper takes the schema lock, so replicas starting together on a new database do not race.
        await create_schema(self._engine, metadata)

    # --- used while applying a meeting event (all in the caller's transaction) ---

    @staticmethod
    async def meeting(connection: AsyncConnection, school_id: str, meeting_id: str) -> MeetingMemory | None:
        row = (
            await connection.execute(
                sa.select(reminder_meetings).where(
                    reminder_meetings.c.school_id == school_id, reminder_meetings.c.meeting_id == meeting_id
                )
            )
        ).one_or_none()
        if row is None:
            return None
        return MeetingMemory(
            first_starts_at=as_utc(row.first_starts_at),
            first_location=row.first_location,
            last_event_time=as_utc(row.last_event_time) if row.last_event_time else None,
            cancelled=row.cancelled,
        )

    @staticmethod
    async def remember_meeting(
        connection: AsyncConnection,
        school_id: str,
        meeting_id: str,
        *,
        known: MeetingMemory | None,
        starts_at: datetime,
        location: str,
        event_time: datetime | None,
        cancelled: bool,
    ) -> None:
        values = {"last_event_time": as_utc(event_time) if event_time else None, "cancelled": cancelled}
        if known is None:
            await connection.execute(
                reminder_meetings.insert().values(
                    school_id=school_id,
                    meeting_id=meeting_id,
                    first_starts_at=as_utc(starts_at),
                    first_location=location,
                    **values,
                )
            )
        else:
            await connection.execute(
                reminder_meetings.update()
                .where(reminder_meetings.c.school_id == school_id, reminder_meetings.c.meeting_id == meeting_id)
                .values(**values)
            )

    @staticmethod
    async def invited_at(
        connection: AsyncConnection, school_id: str, meeting_id: str, guardian_ids: Sequence[str], now: datetime
    ) -> dict[str, datetime]:
        """When each guardian was first invited; those seen for the first time are invited `now`."""
        rows = await connection.execute(
            sa.select(reminder_invitations.c.guardian_id, reminder_invitations.c.invited_at).where(
                reminder_invitations.c.school_id == school_id, reminder_invitations.c.meeting_id == meeting_id
            )
        )
        known = {row.guardian_id: as_utc(row.invited_at) for row in rows}
        new = [guardian_id for guardian_id in guardian_ids if guardian_id not in known]
        if new:
            await connection.execute(
                reminder_invitations.insert(),
                [
                    {"school_id": school_id, "meeting_id": meeting_id, "guardian_id": guardian_id, "invited_at": now}
                    for guardian_id in new
                ],
            )
        return known | dict.fromkeys(new, now)

    @staticmethod
    async def rows_of_meeting(connection: AsyncConnection, school_id: str, meeting_id: str) -> dict[str, ReminderRow]:
        rows = await connection.execute(
            sa.select(reminders).where(reminders.c.school_id == school_id, reminders.c.meeting_id == meeting_id)
        )
        return {row.reminder_id: ReminderRow.from_row(row) for row in rows}

    @staticmethod
    async def insert(connection: AsyncConnection, rows: Sequence[dict[str, object]]) -> None:
        if rows:
            await connection.execute(reminders.insert(), list(rows))

    @staticmethod
    async def set_state(
        connection: AsyncConnection,
        reminder_ids: Sequence[str],
        state: ReminderState,
        *,
        now: datetime,
        reason: str | None = None,
        only_open: bool = True,
    ) -> None:
        if not reminder_ids:
            return
        statement = reminders.update().where(reminders.c.reminder_id.in_(reminder_ids))
        if only_open:
            statement = statement.where(reminders.c.state.in_(OPEN_STATES))
        await connection.execute(statement.values(state=state.value, reason=reason, updated_at=now))

    @staticmethod
    async def refresh_payload(connection: AsyncConnection, reminder_id: str, payload: str, now: datetime) -> None:
        await connection.execute(
            reminders.update()
            .where(reminders.c.reminder_id == reminder_id, reminders.c.state == ReminderState.PENDING.value)
            .values(payload=payload, updated_at=now)
        )

    # --- used when firing ---

    async def claim_due(self, *, now: datetime, owner: str, lease: timedelta, limit: int) -> list[ReminderRow]:
        """Take up to `limit` due reminders for `owner`: pending ones, and claimed ones whose lease ran out."""
        async with self._engine.begin() as connection:
            due = (
                sa.select(reminders.c.reminder_id)
                .where(
                    sa.or_(
                        sa.and_(reminders.c.state == ReminderState.PENDING.value, reminders.c.due_at <= now),
                        sa.and_(reminders.c.state == ReminderState.CLAIMED.value, self._claim_ended(reminders, now)),
                    )
                )
                .order_by(reminders.c.due_at)
                .limit(limit)
            )
            if connection.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = [row.reminder_id for row in await connection.execute(due)]
            if not ids:
                return []
            claimed = await connection.execute(
                reminders.update()
                .where(reminders.c.reminder_id.in_(ids))
                .values(state=ReminderState.CLAIMED.value, claimed_by=owner, lease_until=now + lease, updated_at=now)
                .returning(*reminders.c)
            )
            return sorted((ReminderRow.from_row(row) for row in claimed), key=lambda row: row.due_at)

    async def settle(
        self, reminder_id: str, state: ReminderState, *, owner: str, now: datetime, reason: str | None = None
    ) -> None:
        """Record how a claimed reminder ended; a claim that passed to another owner is left to it."""
        await self.settle_many([Settlement(reminder_id, state, reason)], owner=owner, now=now)

    async def settle_many(self, settlements: Sequence[Settlement], *, owner: str, now: datetime) -> None:
        """`settle` for a whole batch in one transaction and one statement (run once per row by the driver)."""
        if not settlements:
            return
        async with self._engine.begin() as connection:
            await connection.execute(
                reminders.update()
                .where(
                    reminders.c.reminder_id == sa.bindparam("b_reminder_id"),
                    reminders.c.state == ReminderState.CLAIMED.value,
                    reminders.c.claimed_by == owner,
                )
                .values(
                    state=sa.bindparam("b_state"), reason=sa.bindparam("b_reason"), lease_until=None, updated_at=now
                ),
                [
                    {
                        "b_reminder_id": settlement.reminder_id,
                        "b_state": settlement.state.value,
                        "b_reason": settlement.reason,
                    }
                    for settlement in settlements
                ],
            )

    async def oldest_unfired_due(self) -> datetime | None:
        """The due time of the oldest reminder not yet sent or settled (pending or claimed), for the lateness gauge."""
        unfired = [ReminderState.PENDING.value, ReminderState.CLAIMED.value]
        async with self._engine.connect() as connection:
            oldest = (
                await connection.execute(
                    sa.select(sa.func.min(reminders.c.due_at)).where(reminders.c.state.in_(unfired))
                )
            ).scalar_one_or_none()
        return None if oldest is None else as_utc(oldest)

    async def next_due(self) -> datetime | None:
        """The earliest moment anything may become due: the next pending reminder or an expiring lease."""
        async with self._engine.connect() as connection:
            pending = (
                await connection.execute(
                    sa.select(sa.func.min(reminders.c.due_at)).where(reminders.c.state == ReminderState.PENDING.value)
                )
            ).scalar_one_or_none()
            leases = (
                await connection.execute(
                    sa.select(sa.func.min(reminders.c.lease_until)).where(
                        reminders.c.state == ReminderState.CLAIMED.value
                    )
                )
            ).scalar_one_or_none()
        candidates = [as_utc(moment) for moment in (pending, leases) if moment is not None]
        return min(candidates) if candidates else None

    async def count_by_state(self) -> dict[str, int]:
        async with self._engine.connect() as connection:
            rows = await connection.execute(sa.select(reminders.c.state, sa.func.count()).group_by(reminders.c.state))
            return {row[0]: row[1] for row in rows}

    async def get(self, reminder_id: str) -> ReminderRow | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(sa.select(reminders).where(reminders.c.reminder_id == reminder_id))
            ).one_or_none()
        return ReminderRow.from_row(row) if row else None

    @property
    def engine(self) -> AsyncEngine:
        return self._engine
