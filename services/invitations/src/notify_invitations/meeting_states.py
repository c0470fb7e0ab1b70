"""What the service remembers about each meeting, so it can tell a real change from a repeat.

An update is announced only when time or place changed, with the calendar SEQUENCE one higher than before. The
decision taken for each event id is stored with it: when Kafka redelivers the event, the same decision (and so
the same SEQUENCE and the same notifications) comes back, and the ledger then sends nothing twice.

Every row is keyed by school: meeting ids are chosen by each school's admin system, so another school's meeting
with the same id is another meeting, and its events never read or change this one's state. Decisions are keyed
by school, source and event id, since a CloudEvents id is only unique per source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from notify_shared.contract import Meeting, MeetingCancelled, MeetingCreated, MeetingUpdated
from notify_shared.ledger import create_schema

MeetingEvent = MeetingCreated | MeetingUpdated | MeetingCancelled

metadata = sa.MetaData()

meeting_states = sa.Table(
    "invitation_meeting_states",
    metadata,
    sa.Column("school_id", sa.String(200), primary_key=True),
    sa.Column("meeting_id", sa.String(200), primary_key=True),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("snapshot", sa.Text, nullable=False),
    sa.Column("cancelled", sa.Boolean, nullable=False, default=False),
    sa.Column("invited_guardians", sa.Text, nullable=False),
    sa.Column("last_event_time", sa.DateTime(timezone=True), nullable=True),
    # When the meeting (as last announced) ends: its details are kept until the retention window after it.
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
)

meeting_decisions = sa.Table(
    "invitation_decisions",
    metadata,
    sa.Column("school_id", sa.String(200), primary_key=True),
    sa.Column("source", sa.String(500), primary_key=True),
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("meeting_id", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("changes", sa.String(100), nullable=False),
    sa.Column("previous_snapshot", sa.Text, nullable=True),
    sa.Column("newly_invited", sa.Text, nullable=False),
)


class DecisionKind(StrEnum):
    INVITE = "invite"
    """First news of this meeting: everyone is invited."""
    UPDATE = "update"
    """A later state: changes go to those invited before, invitations to guardians added since."""
    CANCEL = "cancel"
    STALE = "stale"
    """Older than what was already applied (e.g. a replay out of order): nothing is sent."""


@dataclass(frozen=True)
class MeetingDecision:
    """What one meeting event means for the guardians."""

    kind: DecisionKind
    sequence: int
    changes: frozenset[str]
    previous: Meeting | None
    newly_invited: frozenset[str]


def changes_between(before: Meeting, after: Meeting) -> frozenset[str]:
    """The changes guardians are told about: time and place. A new title or agenda alone is no reason to notify."""
    changed = set()
    if (before.starts_at, before.ends_at) != (after.starts_at, after.ends_at):
        changed.add("time")
    if before.location != after.location:
        changed.add("place")
    return frozenset(changed)


def _eligible_ids(event: MeetingEvent) -> set[str]:
    return {r.guardian_id for r in event.data.recipients if r.may_receive_routine_notifications}


class MeetingStateStore:
    """Meeting states and per-event decisions, in the service's database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_schema(self) -> None:
        # The shared helper takes the schema lock, so replicas starting together on a new database do not race.
        await create_schema(self._engine, metadata)

    async def decide(self, event: MeetingEvent) -> MeetingDecision:
        """Decide what `event` means, remember it, and return the same answer for the same event id forever."""
        async with self._engine.begin() as connection:
            recorded = await self._recorded_decision(connection, event)
            if recorded is not None:
                return recorded
            decision = await self._new_decision(connection, event)
            await connection.execute(
                meeting_decisions.insert().values(
                    school_id=event.data.school.id,
                    source=event.source,
                    event_id=event.id,
                    meeting_id=event.data.meeting.meeting_id,
                    kind=decision.kind.value,
                    sequence=decision.sequence,
                    changes=",".join(sorted(decision.changes)),
                    previous_snapshot=decision.previous.model_dump_json() if decision.previous else None,
                    newly_invited=json.dumps(sorted(decision.newly_invited)),
                )
            )
            return decision

    async def _recorded_decision(self, connection: AsyncConnection, event: MeetingEvent) -> MeetingDecision | None:
        row = (
            await connection.execute(
                sa.select(meeting_decisions).where(
                    meeting_decisions.c.school_id == event.data.school.id,
                    meeting_decisions.c.source == event.source,
                    meeting_decisions.c.event_id == event.id,
                )
            )
        ).one_or_none()
        if row is None:
            return None
        return MeetingDecision(
            kind=DecisionKind(row.kind),
            sequence=row.sequence,
            changes=frozenset(filter(None, row.changes.split(","))),
            previous=Meeting.model_validate_json(row.previous_snapshot) if row.previous_snapshot else None,
            newly_invited=frozenset(json.loads(row.newly_invited)),
        )

    async def _new_decision(self, connection: AsyncConnection, event: MeetingEvent) -> MeetingDecision:
        meeting = event.data.meeting
        this_meeting = sa.and_(
            meeting_states.c.school_id == event.data.school.id, meeting_states.c.meeting_id == meeting.meeting_id
        )
        state = (
            await connection.execute(
                # Locked on PostgreSQL: events of one meeting arrive on three topics and may be handled at once.
                sa.select(meeting_states).where(this_meeting).with_for_update()
            )
        ).one_or_none()
        eligible = _eligible_ids(event)
        if state is None:
            kind = DecisionKind.CANCEL if isinstance(event, MeetingCancelled) else DecisionKind.INVITE
            decision = MeetingDecision(kind, 0, frozenset(), None, frozenset(eligible))
            await connection.execute(
                meeting_states.insert().values(
                    meeting_id=meeting.meeting_id,
                    school_id=event.data.school.id,
                    sequence=0,
                    snapshot=meeting.model_dump_json(),
                    cancelled=kind is DecisionKind.CANCEL,
                    invited_guardians=json.dumps(sorted(eligible)),
                    last_event_time=_in_utc(event.time),
                    ends_at=_in_utc(meeting.ends_at),
                )
            )
            return decision

        if _is_older(event.time, state.last_event_time) or state.cancelled:
            # After a cancellation nothing more is announced: a new meeting needs a new id.
            return MeetingDecision(DecisionKind.STALE, state.sequence, frozenset(), None, frozenset())

        previous = Meeting.model_validate_json(state.snapshot)
        invited_before = set(json.loads(state.invited_guardians))
        if isinstance(event, MeetingCancelled):
            decision = MeetingDecision(DecisionKind.CANCEL, state.sequence + 1, frozenset(), previous, frozenset())
            invited_now = invited_before
        else:
            changes = changes_between(previous, meeting)
            sequence = state.sequence + 1 if changes else state.sequence
            newly_invited = frozenset(eligible - invited_before)
            decision = MeetingDecision(DecisionKind.UPDATE, sequence, changes, previous, newly_invited)
            invited_now = invited_before | eligible
        await connection.execute(
            meeting_states.update()
            .where(this_meeting)
            .values(
                sequence=decision.sequence,
                snapshot=meeting.model_dump_json(),
                cancelled=decision.kind is DecisionKind.CANCEL,
                invited_guardians=json.dumps(sorted(invited_now)),
                last_event_time=_in_utc(event.time) or state.last_event_time,
                ends_at=_in_utc(meeting.ends_at),
            )
        )
        return decision


def _in_utc(moment: datetime | None) -> datetime | None:
    # SQLite keeps no offset, so every stored time is UTC and a naive one read back is UTC too.
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _is_older(event_time: datetime | None, applied_time: datetime | None) -> bool:
    event_utc, applied_utc = _in_utc(event_time), _in_utc(applied_time)
    return event_utc is not None and applied_utc is not None and event_utc < applied_utc
