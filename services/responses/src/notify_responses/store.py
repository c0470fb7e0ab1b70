"""The responses database: what the answer page and SMS matching need to know, the answers, and the outbox.

What is kept, and why (docs/responses.md, "What the service stores"):

- `response_meetings`: title, start, end, place and the school's time zone and written standard, to show the
  meeting on the page and to close answers when it starts. The rules in notify_responses.retention delete a
  meeting with its invitations and answers once it ended longer ago than `RETENTION_PERSONAL_DATA`.
- `response_invitations`: for each invited guardian, the link reference (`notify_shared.answer_links`), the
  language (the page's language) and the mobile number (to match SMS replies). No name, no email.
- `response_answers`: each guardian's latest answer.
- `response_outbox`: `meeting.rsvp` events written in the same transaction as the answer, and published by
  the relay (`notify_responses.relay`) once Kafka takes them: an answer is never recorded without its event,
  nor its event published without the answer.

Every row is scoped by school: a meeting id or guardian id means something only within its school.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from notify_shared.contract import AnswerChannel, Rsvp
from notify_shared.ledger.database import (
    create_engine,
    create_schema,
    insert_ignoring_conflicts,
    read_transaction,
    utc_from_db,
)
from notify_shared.ledger.database import metadata as _shared_metadata

metadata = sa.MetaData(naming_convention=_shared_metadata.naming_convention)

meetings = sa.Table(
    "response_meetings",
    metadata,
    sa.Column("school_id", sa.String(200), primary_key=True),
    sa.Column("meeting_id", sa.String(200), primary_key=True),
    sa.Column("school_name", sa.String(300), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False, comment="Answers close at this time"),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("location", sa.String(300), nullable=False),
    sa.Column("timezone", sa.String(100), nullable=False, comment="The school's: the page shows local times"),
    sa.Column("written_standard", sa.String(10), nullable=False, comment="The school's fallback language"),
    sa.Column("cancelled", sa.Boolean, nullable=False),
    sa.Column("sms_sender_id", sa.String(11), nullable=True, comment="The school's: signs automatic SMS answers"),
)

invitations = sa.Table(
    "response_invitations",
    metadata,
    sa.Column("reference", sa.String(18), primary_key=True, comment="Hex of the answer link's invitation reference"),
    sa.Column("school_id", sa.String(200), nullable=False),
    sa.Column("meeting_id", sa.String(200), nullable=False),
    sa.Column("guardian_id", sa.String(200), nullable=False),
    sa.Column("language", sa.String(35), nullable=False),
    sa.Column("phone", sa.String(40), nullable=True, comment="E.164, to match SMS replies; nothing else"),
    sa.Column("invited", sa.Boolean, nullable=False, comment="False once an update left the guardian out"),
    sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False, comment="Time of the latest meeting event"),
    sa.Index("ix_response_invitations_meeting", "school_id", "meeting_id"),
    sa.Index("ix_response_invitations_phone", "phone"),
)

answers = sa.Table(
    "response_answers",
    metadata,
    sa.Column("school_id", sa.String(200), primary_key=True),
    sa.Column("meeting_id", sa.String(200), primary_key=True),
    sa.Column("guardian_id", sa.String(200), primary_key=True),
    sa.Column("answer", sa.String(20), nullable=False),
    sa.Column("interpreter_language", sa.String(35), nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("via", sa.String(10), nullable=False),
    sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
)

sms_replies = sa.Table(
    "response_sms_replies",
    metadata,
    sa.Column("provider", sa.String(20), primary_key=True),
    sa.Column("message_id", sa.String(200), primary_key=True, comment="The provider's id: a retried webhook is seen"),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)

outbox = sa.Table(
    "response_outbox",
    metadata,
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=True, comment="Publishing order"),
    sa.Column("event_id", sa.String(200), nullable=False, unique=True),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("kafka_key", sa.LargeBinary, nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=False, comment="The CloudEvent, structured JSON"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Index("ix_response_outbox_unpublished", "published_at", "position"),
)


@dataclass(frozen=True)
class MeetingRow:
    school_id: str
    meeting_id: str
    school_name: str
    title: str
    starts_at: datetime
    ends_at: datetime
    location: str
    timezone: str
    written_standard: str
    cancelled: bool
    sms_sender_id: str | None = None


@dataclass(frozen=True)
class GuardianInvitation:
    """One guardian's invitation, as a meeting event last described it."""

    reference: str
    school_id: str
    meeting_id: str
    guardian_id: str
    language: str
    phone: str | None


@dataclass(frozen=True)
class StoredAnswer:
    answer: Rsvp
    interpreter_language: str | None
    comment: str | None
    via: AnswerChannel
    answered_at: datetime


@dataclass(frozen=True)
class InvitationState:
    """What the page shows for one link: the meeting, the guardian's language and the answer so far."""

    invitation: GuardianInvitation
    meeting: MeetingRow
    invited: bool
    answer: StoredAnswer | None


@dataclass(frozen=True)
class OutboxEvent:
    position: int
    event_id: str
    event_type: str
    key: bytes
    value: bytes


class ResponseStore:
    """The tables above on SQLite or PostgreSQL (see `notify_shared.ledger.database`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._owns_engine = False

    @classmethod
    async def connect(cls, url: str) -> Self:
        """Open the database at `url`, create the tables if missing, and own the engine."""
        engine = create_engine(url)
        try:
            await create_schema(engine, metadata)
            await _add_sender_id_column(engine)
        except BaseException:
            await engine.dispose()
            raise
        store = cls(engine)
        store._owns_engine = True
        return store

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def aclose(self) -> None:
        if self._owns_engine:
            await self._engine.dispose()

    async def save_meeting(
        self, meeting: MeetingRow, invited: Sequence[GuardianInvitation], *, event_time: datetime
    ) -> None:
        """The meeting as its latest event describes it; guardians no longer listed can no longer answer."""
        async with self._engine.begin() as connection:
            await _upsert(connection, meetings, vars(meeting), keys=("school_id", "meeting_id"))
            for invitation in invited:
                values = vars(invitation) | {"invited": True, "invited_at": event_time}
                await _upsert(connection, invitations, values, keys=("reference",))
            await connection.execute(
                sa.update(invitations)
                .where(
                    invitations.c.school_id == meeting.school_id,
                    invitations.c.meeting_id == meeting.meeting_id,
                    invitations.c.reference.not_in([invitation.reference for invitation in invited]),
                )
                .values(invited=False)
            )

    async def latest_open_invitation(self, phone: str, *, now: datetime) -> InvitationState | None:
        """The invitation to `phone` that an SMS reply answers: the latest one sent whose meeting has not started
        and is not cancelled; else the latest one at all (to say the school's reply came too late), else None."""
        joined = invitations.join(
            meetings,
            sa.and_(meetings.c.school_id == invitations.c.school_id, meetings.c.meeting_id == invitations.c.meeting_id),
        )
        now = now.astimezone(UTC)
        base = sa.select(invitations.c.reference).select_from(joined).where(invitations.c.phone == phone)
        open_first = base.where(
            invitations.c.invited.is_(True), meetings.c.cancelled.is_(False), meetings.c.starts_at > now
        )
        async with read_transaction(self._engine) as connection:
            for query in (open_first, base):
                reference = await connection.scalar(query.order_by(invitations.c.invited_at.desc()).limit(1))
                if reference is not None:
                    return await _invitation_state(connection, reference)
        return None

    async def first_sight_of_reply(self, provider: str, message_id: str, *, at: datetime) -> bool:
        """True the first time a provider's message id is seen; False for a provider's retry of it."""
        async with self._engine.begin() as connection:
            inserted = await connection.execute(
                insert_ignoring_conflicts(sms_replies, connection.dialect.name)
                .values(provider=provider, message_id=message_id, received_at=at)
                .returning(sms_replies.c.message_id)
            )
            return inserted.first() is not None

    async def queue_event(self, event: OutboxEvent, *, at: datetime) -> None:
        """An event with no answer to store alongside (an unrecognised reply)."""
        async with self._engine.begin() as connection:
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

    async def invitation(self, reference: str) -> InvitationState | None:
        async with read_transaction(self._engine) as connection:
            return await _invitation_state(connection, reference)

    async def record_answer(
        self,
        reference: str,
        answer: StoredAnswer,
        *,
        event: Callable[[GuardianInvitation], OutboxEvent],
        accept: Callable[[InvitationState], bool],
    ) -> tuple[bool, InvitationState | None]:
        """Store `answer` and queue the event `event` makes for the invitation, in one transaction, unless it is the
        answer already stored.

        `accept` looks at the invitation as it stands inside the transaction and says whether it may be answered
        (invited, meeting not started or cancelled). Returns whether anything changed, and that state.
        """
        async with self._engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Two answers from one link at once: the second waits here, then sees the first's answer, so
                # the same answer twice queues one event.
                await connection.execute(
                    sa.select(invitations.c.reference).where(invitations.c.reference == reference).with_for_update()
                )
            state = await _invitation_state(connection, reference)
            if state is None or not accept(state):
                return False, state
            current = state.answer
            if current is not None and _same_answer(current, answer):
                return False, state
            invitation = state.invitation
            queued = event(invitation)
            await _upsert(
                connection,
                answers,
                {
                    "school_id": invitation.school_id,
                    "meeting_id": invitation.meeting_id,
                    "guardian_id": invitation.guardian_id,
                    "answer": answer.answer.value,
                    "interpreter_language": answer.interpreter_language,
                    "comment": answer.comment,
                    "via": answer.via.value,
                    "answered_at": answer.answered_at,
                },
                keys=("school_id", "meeting_id", "guardian_id"),
            )
            await connection.execute(
                sa.insert(outbox).values(
                    event_id=queued.event_id,
                    event_type=queued.event_type,
                    kafka_key=queued.key,
                    value=queued.value,
                    created_at=answer.answered_at,
                    attempts=0,
                )
            )
            return True, InvitationState(invitation, state.meeting, state.invited, answer)

    async def unpublished(self, limit: int) -> list[OutboxEvent]:
        """The oldest events not yet on Kafka, in the order they were written."""
        async with read_transaction(self._engine) as connection:
            rows = await connection.execute(
                sa.select(outbox.c.position, outbox.c.event_id, outbox.c.event_type, outbox.c.kafka_key, outbox.c.value)
                .where(outbox.c.published_at.is_(None))
                .order_by(outbox.c.position)
                .limit(limit)
            )
            return [OutboxEvent(row.position, row.event_id, row.event_type, row.kafka_key, row.value) for row in rows]

    async def mark_published(self, positions: Iterable[int], *, at: datetime) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                sa.update(outbox).where(outbox.c.position.in_(list(positions))).values(published_at=at)
            )

    async def count_attempt(self, position: int) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                sa.update(outbox).where(outbox.c.position == position).values(attempts=outbox.c.attempts + 1)
            )

    async def waiting(self) -> int:
        """Events in the outbox not yet published (a gauge: a growing number means Kafka refuses them)."""
        async with read_transaction(self._engine) as connection:
            count = await connection.scalar(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
        return int(count or 0)


async def _add_sender_id_column(engine: AsyncEngine) -> None:
    # A database made before the automatic SMS answers has no sender id column; its meetings get one with their
    # next event, and until then no automatic answer is sent for them.
    async with engine.begin() as connection:
        columns = await connection.run_sync(
            lambda sync: {column["name"] for column in sa.inspect(sync).get_columns(meetings.name)}
        )
        if "sms_sender_id" in columns:
            return
        # IF NOT EXISTS: replicas starting together on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises them).
        guard = "IF NOT EXISTS " if connection.dialect.name == "postgresql" else ""
        await connection.execute(sa.text(f"ALTER TABLE {meetings.name} ADD COLUMN {guard}sms_sender_id VARCHAR(11)"))


def _same_answer(current: StoredAnswer, new: StoredAnswer) -> bool:
    return (current.answer, current.interpreter_language, current.comment) == (
        new.answer,
        new.interpreter_language,
        new.comment,
    )


async def _invitation_state(connection: AsyncConnection, reference: str) -> InvitationState | None:
    joined = invitations.join(
        meetings,
        sa.and_(meetings.c.school_id == invitations.c.school_id, meetings.c.meeting_id == invitations.c.meeting_id),
    ).outerjoin(
        answers,
        sa.and_(
            answers.c.school_id == invitations.c.school_id,
            answers.c.meeting_id == invitations.c.meeting_id,
            answers.c.guardian_id == invitations.c.guardian_id,
        ),
    )
    row = (
        await connection.execute(
            sa.select(
                invitations,
                meetings.c.school_name,
                meetings.c.title,
                meetings.c.starts_at,
                meetings.c.ends_at,
                meetings.c.location,
                meetings.c.timezone,
                meetings.c.written_standard,
                meetings.c.cancelled,
                meetings.c.sms_sender_id,
                answers.c.answer,
                answers.c.interpreter_language,
                answers.c.comment,
                answers.c.via,
                answers.c.answered_at,
            )
            .select_from(joined)
            .where(invitations.c.reference == reference)
        )
    ).one_or_none()
    if row is None:
        return None
    invitation = GuardianInvitation(
        reference=row.reference,
        school_id=row.school_id,
        meeting_id=row.meeting_id,
        guardian_id=row.guardian_id,
        language=row.language,
        phone=row.phone,
    )
    meeting = MeetingRow(
        school_id=row.school_id,
        meeting_id=row.meeting_id,
        school_name=row.school_name,
        title=row.title,
        starts_at=utc_from_db(row.starts_at),
        ends_at=utc_from_db(row.ends_at),
        location=row.location,
        timezone=row.timezone,
        written_standard=row.written_standard,
        cancelled=row.cancelled,
        sms_sender_id=row.sms_sender_id,
    )
    answer = None
    if row.answer is not None:
        answer = StoredAnswer(
            answer=Rsvp(row.answer),
            interpreter_language=row.interpreter_language,
            comment=row.comment,
            via=AnswerChannel(row.via),
            answered_at=utc_from_db(row.answered_at),
        )
    return InvitationState(invitation, meeting, bool(row.invited), answer)


async def _upsert(
    connection: AsyncConnection, table: sa.Table, values: dict[str, Any], *, keys: tuple[str, ...]
) -> None:
    insert: Any
    if connection.dialect.name == "postgresql":
        insert = postgresql.insert(table)
    elif connection.dialect.name == "sqlite":
        insert = sqlite.insert(table)
    else:
        raise NotImplementedError(f"runs on SQLite or PostgreSQL, not {connection.dialect.name}")
    statement = insert.values(**values)
    updates = {name: statement.excluded[name] for name in values if name not in keys}
    await connection.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=updates))
