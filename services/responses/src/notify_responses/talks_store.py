"""The development-talk tables: rounds, slots, pupils, the guardians who may book, and the bookings.

What is kept, and why (docs/talks.md, "What the service stores"): only what the booking page needs. No guardian's
name, email or number; a pupil's first name, so that a parent of two children knows which talk they book.

The booking rules live in the database, so that they hold with any number of replicas:

- one booking per pupil per round: the bookings' primary key is (school, round, pupil);
- one pupil per slot: a unique key on (school, round, slot);
- a booking's slot exists: a foreign key to the slots, so an offer cannot withdraw a slot under a booking that
  a concurrent transaction is writing;
- a guardian of two children in the round never holds overlapping talks: every booking transaction first locks
  the rows of all the pupil's guardians in the round (PostgreSQL: `SELECT … FOR UPDATE`, in one order; SQLite:
  `BEGIN IMMEDIATE`, one writer), so two bookings that share a guardian run one after the other and the second
  sees the first's talk. Overlap between time ranges is no equality a unique key can express.

Every row is scoped by school: a round, slot or pupil id means something only within its school. Events for the
admin system go into the responses service's outbox (`notify_responses.store.outbox`) in the same transaction as
the booking they describe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from notify_responses.store import OutboxEvent, outbox
from notify_shared.ledger.database import create_schema, insert_ignoring_conflicts, read_transaction, utc_from_db
from notify_shared.ledger.database import metadata as _shared_metadata

metadata = sa.MetaData(naming_convention=_shared_metadata.naming_convention)

rounds = sa.Table(
    "talk_rounds",
    metadata,
    sa.Column("school_id", sa.String(200), primary_key=True),
    sa.Column("round_id", sa.String(200), primary_key=True),
    sa.Column("school_name", sa.String(300), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("class_name", sa.String(300), nullable=False),
    sa.Column("timezone", sa.String(100), nullable=False, comment="The school's: the page shows local times"),
    sa.Column("written_standard", sa.String(10), nullable=False, comment="The school's fallback language"),
    sa.Column("pupil_present", sa.Boolean, nullable=False),
    sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_talk_ends_at", sa.DateTime(timezone=True), nullable=False, comment="For the retention rules"),
    sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False, comment="`time` of the offer applied"),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True, comment="When talks.round_closed was queued"),
    sa.Index("ix_talk_rounds_closing", "closed_at", "closes_at"),
)

slots = sa.Table(
    "talk_slots",
    metadata,
    sa.Column("school_id", sa.String(200), primary_key=True),
    sa.Column("round_id", sa.String(200), primary_key=True),
    sa.Column("slot_id", sa.String(200), primary_key=True),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("teacher_id", sa.String(200), nullable=False),
    sa.Column("teacher_name", sa.String(300), nullable=False),
    sa.Column("place", sa.String(300), nullable=True),
    sa.Column("video_link", sa.String(500), nullable=True),
    sa.ForeignKeyConstraint(["school_id", "round_id"], [rounds.c.school_id, rounds.c.round_id], ondelete="CASCADE"),
)

pupils = sa.Table(
    "talk_pupils",
    metadata,
    sa.Column("school_id", sa.String(200), primary_key=True),
    sa.Column("round_id", sa.String(200), primary_key=True),
    sa.Column("pupil_id", sa.String(200), primary_key=True),
    sa.Column("first_name", sa.String(300), nullable=False),
    sa.ForeignKeyConstraint(["school_id", "round_id"], [rounds.c.school_id, rounds.c.round_id], ondelete="CASCADE"),
)

guardians = sa.Table(
    "talk_guardians",
    metadata,
    sa.Column("reference", sa.String(18), primary_key=True, comment="Hex of the booking link's reference"),
    sa.Column("school_id", sa.String(200), nullable=False),
    sa.Column("round_id", sa.String(200), nullable=False),
    sa.Column("pupil_id", sa.String(200), nullable=False),
    sa.Column("guardian_id", sa.String(200), nullable=False),
    sa.Column("language", sa.String(35), nullable=False),
    sa.ForeignKeyConstraint(
        ["school_id", "round_id", "pupil_id"],
        [pupils.c.school_id, pupils.c.round_id, pupils.c.pupil_id],
        ondelete="CASCADE",
    ),
    sa.Index("ix_talk_guardians_guardian", "school_id", "round_id", "guardian_id"),
)

bookings = sa.Table(
    "talk_bookings",
    metadata,
    sa.Column("school_id", sa.String(200), primary_key=True),
    sa.Column("round_id", sa.String(200), primary_key=True),
    sa.Column("pupil_id", sa.String(200), primary_key=True, comment="One booking per pupil per round"),
    sa.Column("slot_id", sa.String(200), nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False, comment="The slot's, for the overlap rule"),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("guardian_id", sa.String(200), nullable=False, comment="Who booked or last moved it"),
    sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False, comment="Rises with each move: the calendar entry's SEQUENCE"),
    sa.UniqueConstraint("school_id", "round_id", "slot_id", name="uq_talk_bookings_slot"),
    sa.ForeignKeyConstraint(
        ["school_id", "round_id", "slot_id"], [slots.c.school_id, slots.c.round_id, slots.c.slot_id]
    ),
    sa.ForeignKeyConstraint(
        ["school_id", "round_id", "pupil_id"],
        [pupils.c.school_id, pupils.c.round_id, pupils.c.pupil_id],
        ondelete="CASCADE",
    ),
)


@dataclass(frozen=True)
class RoundRow:
    school_id: str
    round_id: str
    school_name: str
    title: str
    class_name: str
    timezone: str
    written_standard: str
    pupil_present: bool
    opens_at: datetime
    closes_at: datetime
    last_talk_ends_at: datetime
    offered_at: datetime


@dataclass(frozen=True)
class SlotRow:
    slot_id: str
    starts_at: datetime
    ends_at: datetime
    teacher_id: str
    teacher_name: str
    place: str | None
    video_link: str | None


@dataclass(frozen=True)
class PupilRow:
    pupil_id: str
    first_name: str


@dataclass(frozen=True)
class GuardianRow:
    """A guardian who may book one pupil's talk (eligible when the offer was applied)."""

    reference: str
    pupil_id: str
    guardian_id: str
    language: str


@dataclass(frozen=True)
class BookingRow:
    pupil_id: str
    slot_id: str
    starts_at: datetime
    ends_at: datetime
    guardian_id: str
    booked_at: datetime
    sequence: int


@dataclass(frozen=True)
class Offer:
    """A round as one `talks.offered` describes it, ready to store."""

    round: RoundRow
    slots: Sequence[SlotRow]
    pupils: Sequence[PupilRow]
    guardians: Sequence[GuardianRow]


@dataclass(frozen=True)
class BookingView:
    """What the booking page shows for one link: the round, the pupil, the guardian, the booking, all slots."""

    round: RoundRow
    pupil: PupilRow
    guardian: GuardianRow
    booking: BookingRow | None
    slots: tuple[SlotRow, ...]
    taken: frozenset[str]
    """Slot ids booked by any pupil (this pupil's included)."""

    @property
    def free_slots(self) -> tuple[SlotRow, ...]:
        return tuple(slot for slot in self.slots if slot.slot_id not in self.taken)


async def create_talk_tables(engine: AsyncEngine) -> None:
    """Create the talk tables in the responses database if missing (safe from several replicas at once)."""
    await create_schema(engine, metadata)


def _round_key(table: sa.Table, school_id: str, round_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.school_id == school_id, table.c.round_id == round_id)


async def lock_round(connection: AsyncConnection, school_id: str, round_id: str, *, exclusive: bool) -> RoundRow | None:
    """The round, locked for this transaction on PostgreSQL: shared by bookings (they run side by side), exclusive
    for a new offer (which waits for the bookings in flight, and they for it). SQLite has one writer anyway."""
    query = sa.select(rounds).where(_round_key(rounds, school_id, round_id))
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(read=not exclusive)
    row = (await connection.execute(query)).one_or_none()
    return _round_row(row) if row is not None else None


async def lock_guardians_of(connection: AsyncConnection, school_id: str, round_id: str, pupil_id: str) -> set[str]:
    """Lock every row of every guardian of `pupil_id` in the round (their other children's too), in one order, and
    return those guardians' ids: two bookings that share a guardian then never run at the same time."""
    of_pupil = sa.select(guardians.c.guardian_id).where(
        _round_key(guardians, school_id, round_id), guardians.c.pupil_id == pupil_id
    )
    query = (
        sa.select(guardians.c.reference, guardians.c.guardian_id)
        .where(_round_key(guardians, school_id, round_id), guardians.c.guardian_id.in_(of_pupil))
        .order_by(guardians.c.reference)
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    return {row.guardian_id for row in await connection.execute(query)}


async def overlapping_sibling_booking(
    connection: AsyncConnection,
    school_id: str,
    round_id: str,
    *,
    pupil_id: str,
    guardian_ids: set[str],
    starts_at: datetime,
    ends_at: datetime,
) -> bool:
    """Whether another pupil who shares one of `guardian_ids` holds a talk overlapping [starts_at, ends_at)."""
    siblings = sa.select(guardians.c.pupil_id).where(
        _round_key(guardians, school_id, round_id),
        guardians.c.guardian_id.in_(sorted(guardian_ids)),
        guardians.c.pupil_id != pupil_id,
    )
    found = await connection.scalar(
        sa.select(sa.literal(1))
        .select_from(bookings)
        .where(
            _round_key(bookings, school_id, round_id),
            bookings.c.pupil_id.in_(siblings),
            bookings.c.starts_at < ends_at,
            bookings.c.ends_at > starts_at,
        )
        .limit(1)
    )
    return found is not None


async def queue(connection: AsyncConnection, event: OutboxEvent, *, at: datetime) -> None:
    """Write `event` into the outbox inside the caller's transaction."""
    await connection.execute(
        sa.insert(outbox).values(
            event_id=event.event_id,
            event_type=event.event_type,
            kafka_key=event.key,
            value=event.value,
            created_at=at,
            attempts=0,
        )
    )


async def save_round(connection: AsyncConnection, row: RoundRow, *, exists: bool) -> None:
    values = vars(row)
    if exists:
        await connection.execute(
            sa.update(rounds).where(_round_key(rounds, row.school_id, row.round_id)).values(**values)
        )
    else:
        await connection.execute(sa.insert(rounds).values(**values))


async def replace_slots(connection: AsyncConnection, school_id: str, round_id: str, offered: Sequence[SlotRow]) -> None:
    """The round's slots become `offered`: new ones added, kept ones updated, the rest deleted (the caller has
    cancelled the bookings of withdrawn slots first)."""
    key = _round_key(slots, school_id, round_id)
    await connection.execute(sa.delete(slots).where(key, slots.c.slot_id.not_in([slot.slot_id for slot in offered])))
    for slot in offered:
        values = vars(slot) | {"school_id": school_id, "round_id": round_id}
        await connection.execute(insert_ignoring_conflicts(slots, connection.dialect.name).values(**values))
        await connection.execute(sa.update(slots).where(key, slots.c.slot_id == slot.slot_id).values(**vars(slot)))
        # A booked slot whose time changed keeps its booking; the booking's copy of the time follows it.
        await connection.execute(
            sa.update(bookings)
            .where(_round_key(bookings, school_id, round_id), bookings.c.slot_id == slot.slot_id)
            .values(starts_at=slot.starts_at, ends_at=slot.ends_at)
        )


async def replace_pupils(connection: AsyncConnection, offer: Offer) -> None:
    """The round's pupils and the guardians who may book become the offer's (bookings of removed pupils go with
    them: the caller has queued their cancellations first)."""
    school_id, round_id = offer.round.school_id, offer.round.round_id
    await connection.execute(
        sa.delete(pupils).where(
            _round_key(pupils, school_id, round_id), pupils.c.pupil_id.not_in([p.pupil_id for p in offer.pupils])
        )
    )
    # Deleted explicitly, not only by cascade: SQLite honours ON DELETE CASCADE only with foreign keys on.
    await connection.execute(
        sa.delete(guardians).where(
            _round_key(guardians, school_id, round_id),
            guardians.c.reference.not_in([guardian.reference for guardian in offer.guardians]),
        )
    )
    for pupil in offer.pupils:
        values = vars(pupil) | {"school_id": school_id, "round_id": round_id}
        await connection.execute(insert_ignoring_conflicts(pupils, connection.dialect.name).values(**values))
        await connection.execute(
            sa.update(pupils)
            .where(_round_key(pupils, school_id, round_id), pupils.c.pupil_id == pupil.pupil_id)
            .values(first_name=pupil.first_name)
        )
    for guardian in offer.guardians:
        values = vars(guardian) | {"school_id": school_id, "round_id": round_id}
        await connection.execute(insert_ignoring_conflicts(guardians, connection.dialect.name).values(**values))
        await connection.execute(
            sa.update(guardians).where(guardians.c.reference == guardian.reference).values(language=guardian.language)
        )


async def round_bookings(connection: AsyncConnection, school_id: str, round_id: str) -> list[BookingRow]:
    rows = await connection.execute(
        sa.select(bookings).where(_round_key(bookings, school_id, round_id)).order_by(bookings.c.pupil_id)
    )
    return [_booking_row(row) for row in rows]


async def booking_of(connection: AsyncConnection, school_id: str, round_id: str, pupil_id: str) -> BookingRow | None:
    row = (
        await connection.execute(
            sa.select(bookings).where(_round_key(bookings, school_id, round_id), bookings.c.pupil_id == pupil_id)
        )
    ).one_or_none()
    return _booking_row(row) if row is not None else None


async def slot_of(connection: AsyncConnection, school_id: str, round_id: str, slot_id: str) -> SlotRow | None:
    row = (
        await connection.execute(
            sa.select(slots).where(_round_key(slots, school_id, round_id), slots.c.slot_id == slot_id)
        )
    ).one_or_none()
    return _slot_row(row) if row is not None else None


async def delete_booking(connection: AsyncConnection, school_id: str, round_id: str, pupil_id: str) -> None:
    await connection.execute(
        sa.delete(bookings).where(_round_key(bookings, school_id, round_id), bookings.c.pupil_id == pupil_id)
    )


async def guardian_by_reference(connection: AsyncConnection, reference: str) -> tuple[str, str, GuardianRow] | None:
    """(school id, round id, guardian) behind a booking link's reference, or None."""
    row = (await connection.execute(sa.select(guardians).where(guardians.c.reference == reference))).one_or_none()
    if row is None:
        return None
    return row.school_id, row.round_id, GuardianRow(row.reference, row.pupil_id, row.guardian_id, row.language)


async def booking_view(connection: AsyncConnection, reference: str) -> BookingView | None:
    """Everything the page shows for the link with `reference`, read in one transaction; None if unknown."""
    found = await guardian_by_reference(connection, reference)
    if found is None:
        return None
    school_id, round_id, guardian = found
    round_result = (
        await connection.execute(sa.select(rounds).where(_round_key(rounds, school_id, round_id)))
    ).one_or_none()
    pupil_result = (
        await connection.execute(
            sa.select(pupils).where(_round_key(pupils, school_id, round_id), pupils.c.pupil_id == guardian.pupil_id)
        )
    ).one_or_none()
    if round_result is None or pupil_result is None:
        return None
    round_row = _round_row(round_result)
    slot_rows = await connection.execute(
        sa.select(slots).where(_round_key(slots, school_id, round_id)).order_by(slots.c.starts_at, slots.c.slot_id)
    )
    taken = await connection.execute(sa.select(bookings.c.slot_id).where(_round_key(bookings, school_id, round_id)))
    return BookingView(
        round=round_row,
        pupil=PupilRow(pupil_result.pupil_id, pupil_result.first_name),
        guardian=guardian,
        booking=await booking_of(connection, school_id, round_id, guardian.pupil_id),
        slots=tuple(_slot_row(row) for row in slot_rows),
        taken=frozenset(taken.scalars()),
    )


async def rounds_to_close(connection: AsyncConnection, now: datetime, limit: int) -> list[RoundRow]:
    """Rounds whose window has closed and whose closing is not yet announced, locked for this transaction (on
    PostgreSQL a round another replica is closing is skipped, not waited for)."""
    query = (
        sa.select(rounds)
        .where(rounds.c.closed_at.is_(None), rounds.c.closes_at <= now)
        .order_by(rounds.c.closes_at)
        .limit(limit)
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [_round_row(row) for row in await connection.execute(query)]


async def pupils_without_booking(connection: AsyncConnection, school_id: str, round_id: str) -> list[str]:
    booked = sa.select(bookings.c.pupil_id).where(_round_key(bookings, school_id, round_id))
    rows = await connection.execute(
        sa.select(pupils.c.pupil_id)
        .where(_round_key(pupils, school_id, round_id), pupils.c.pupil_id.not_in(booked))
        .order_by(pupils.c.pupil_id)
    )
    return list(rows.scalars())


async def mark_closed(connection: AsyncConnection, school_id: str, round_id: str, at: datetime | None) -> None:
    """Record that the round's closing was announced (`at`), or that a new offer reopened it (None)."""
    await connection.execute(sa.update(rounds).where(_round_key(rounds, school_id, round_id)).values(closed_at=at))


class TalkStore:
    """The talk tables on the responses service's engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def view(self, reference: str) -> BookingView | None:
        async with read_transaction(self.engine) as connection:
            return await booking_view(connection, reference)


def _round_row(row: sa.Row[tuple[object, ...]]) -> RoundRow:
    mapping = row._mapping
    return RoundRow(
        school_id=str(mapping["school_id"]),
        round_id=str(mapping["round_id"]),
        school_name=str(mapping["school_name"]),
        title=str(mapping["title"]),
        class_name=str(mapping["class_name"]),
        timezone=str(mapping["timezone"]),
        written_standard=str(mapping["written_standard"]),
        pupil_present=bool(mapping["pupil_present"]),
        opens_at=utc_from_db(mapping["opens_at"]),
        closes_at=utc_from_db(mapping["closes_at"]),
        last_talk_ends_at=utc_from_db(mapping["last_talk_ends_at"]),
        offered_at=utc_from_db(mapping["offered_at"]),
    )


def _slot_row(row: sa.Row[tuple[object, ...]]) -> SlotRow:
    mapping = row._mapping
    return SlotRow(
        slot_id=str(mapping["slot_id"]),
        starts_at=utc_from_db(mapping["starts_at"]),
        ends_at=utc_from_db(mapping["ends_at"]),
        teacher_id=str(mapping["teacher_id"]),
        teacher_name=str(mapping["teacher_name"]),
        place=mapping["place"],
        video_link=mapping["video_link"],
    )


def _booking_row(row: sa.Row[tuple[object, ...]]) -> BookingRow:
    mapping = row._mapping
    return BookingRow(
        pupil_id=str(mapping["pupil_id"]),
        slot_id=str(mapping["slot_id"]),
        starts_at=utc_from_db(mapping["starts_at"]),
        ends_at=utc_from_db(mapping["ends_at"]),
        guardian_id=str(mapping["guardian_id"]),
        booked_at=utc_from_db(mapping["booked_at"]),
        sequence=int(mapping["sequence"]),
    )
