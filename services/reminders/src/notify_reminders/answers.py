"""Guardians' answers (meeting.rsvp, from the responses service) applied to the reminders still to come.

- `declined`: the guardian's pending reminders of that meeting are cancelled (reason `declined`).
- `accepted` or `tentative`: reminders cancelled for an earlier "no" come back if they are still to come, and each
  pending reminder is rendered with the answer, so an accepted guardian's reminder says "You have told the school
  that you are coming" instead of "let the school know if you cannot come".

Only the latest answer counts (by `answered_at`): an older answer read late changes nothing. Reminders already
sent or due in the past are left as they are.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from notify_reminders.store import ReminderState, as_utc, reminders
from notify_shared.contract import EventRejected, GuardianAnswer, MeetingRsvp, Rsvp, decode_event
from notify_shared.kafka.dead_letters import dead_letter_for
from notify_shared.kafka.inbound import DeadLetterSink, fit_dead_letter
from notify_shared.ledger import create_schema
from notify_shared.ledger.database import insert_ignoring_conflicts, read_transaction
from notify_shared.topics import MEETING_RSVP

DECLINED = "declined"
"""The `reason` of a reminder cancelled because the guardian said they are not coming."""

metadata = sa.MetaData()

reminder_answers = sa.Table(
    "reminder_answers",
    metadata,
    sa.Column("school_id", sa.String(200), primary_key=True),
    sa.Column("meeting_id", sa.String(200), primary_key=True),
    sa.Column("guardian_id", sa.String(200), primary_key=True),
    sa.Column("answer", sa.String(20), nullable=False),
    sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
)

logger = logging.getLogger(__name__)


class AnswerApplier:
    """Applies answers to the reminder schedule in the reminders' database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_schema(self) -> None:
        await create_schema(self._engine, metadata)

    async def apply(self, answer: GuardianAnswer, *, now: datetime) -> int:
        """Apply `answer` unless a later one is already applied; returns how many reminders it changed."""
        now = as_utc(now)
        answered_at = as_utc(answer.answered_at)
        async with self._engine.begin() as connection:
            if not await _latest(connection, answer, answered_at):
                return 0
            guardian_rows = (
                reminders.c.school_id == answer.school_id,
                reminders.c.meeting_id == answer.meeting_id,
                reminders.c.guardian_id == answer.guardian_id,
                reminders.c.due_at > now,
            )
            if answer.answer is Rsvp.DECLINED:
                changed = await connection.execute(
                    reminders.update()
                    .where(*guardian_rows, reminders.c.state == ReminderState.PENDING.value)
                    .values(state=ReminderState.CANCELLED.value, reason=DECLINED, updated_at=now)
                )
                count = changed.rowcount
            else:
                reopened = await connection.execute(
                    reminders.update()
                    .where(*guardian_rows, reminders.c.state == ReminderState.CANCELLED.value)
                    .where(reminders.c.reason == DECLINED)
                    .values(state=ReminderState.PENDING.value, reason=None, updated_at=now)
                )
                count = reopened.rowcount
                pending = await connection.execute(
                    sa.select(reminders.c.reminder_id, reminders.c.payload).where(
                        *guardian_rows, reminders.c.state == ReminderState.PENDING.value
                    )
                )
                for reminder_id, payload in pending.all():
                    document = json.loads(payload)
                    document["guardian"]["rsvp"] = answer.answer.value
                    await connection.execute(
                        reminders.update()
                        .where(reminders.c.reminder_id == reminder_id)
                        .values(payload=json.dumps(document), updated_at=now)
                    )
        logger.info(
            "answer %s of guardian %s to meeting %s of school %s: %d reminders changed",
            answer.answer.value,
            answer.guardian_id,
            answer.meeting_id,
            answer.school_id,
            count,
        )
        return count

    async def answer_of(self, school_id: str, meeting_id: str, guardian_id: str) -> Rsvp | None:
        async with read_transaction(self._engine) as connection:
            value = await connection.scalar(
                sa.select(reminder_answers.c.answer).where(
                    reminder_answers.c.school_id == school_id,
                    reminder_answers.c.meeting_id == meeting_id,
                    reminder_answers.c.guardian_id == guardian_id,
                )
            )
        return None if value is None else Rsvp(value)


async def decode_answer(record: Any, *, dead_letters: DeadLetterSink, service: str) -> MeetingRsvp | None:
    """The meeting.rsvp in a consumed record, or None once a record that is not one has been dead-lettered."""
    try:
        event = decode_event(record.value, record.headers or (), {MEETING_RSVP: MeetingRsvp})
    except EventRejected as rejection:
        await dead_letters(fit_dead_letter(dead_letter_for(record, rejection, service=service)))
        logger.warning("dead-lettered meeting.rsvp record (event id %s): %s", rejection.event_id, rejection.reason)
        return None
    assert isinstance(event, MeetingRsvp)
    return event


async def _latest(connection: AsyncConnection, answer: GuardianAnswer, answered_at: datetime) -> bool:
    """Record `answer` as the guardian's latest; False when a later one was recorded before it."""
    key = {"school_id": answer.school_id, "meeting_id": answer.meeting_id, "guardian_id": answer.guardian_id}
    values = key | {"answer": answer.answer.value, "answered_at": answered_at}
    inserted = await connection.execute(
        insert_ignoring_conflicts(reminder_answers, connection.dialect.name)
        .values(**values)
        .returning(reminder_answers.c.answer)
    )
    if inserted.first() is not None:
        return True
    updated = await connection.execute(
        reminder_answers.update()
        .where(*(reminder_answers.c[name] == value for name, value in key.items()))
        .where(reminder_answers.c.answered_at < answered_at)
        .values(answer=answer.answer.value, answered_at=answered_at)
    )
    return updated.rowcount > 0
