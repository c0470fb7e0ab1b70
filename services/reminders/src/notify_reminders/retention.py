"""How long the reminders service keeps its schedule (docs/privacy.md).

A reminder row carries everything needed to render it when it falls due, the guardian's contact details
included. Once the meeting has started nothing more can fall due, so every row of a meeting goes the
personal-data window after its start; the meeting's first time and place and the list of invited guardians go
with the last of them. Erasing a guardian deletes their reminders, pending ones too, so nothing more is sent.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from notify_reminders.store import reminder_invitations, reminder_meetings, reminders
from notify_shared.retention.rules import RetentionRule, rows_of_guardian
from notify_shared.retention.windows import Window


def _started_before(cutoff: datetime) -> sa.ColumnElement[bool]:
    return reminders.c.starts_at <= cutoff


def _meeting_done(table: sa.Table) -> sa.ColumnElement[bool]:
    still_scheduled = sa.exists().where(
        reminders.c.school_id == table.c.school_id, reminders.c.meeting_id == table.c.meeting_id
    )
    return ~still_scheduled


def _meeting_long_started(cutoff: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(reminder_meetings.c.first_starts_at <= cutoff, _meeting_done(reminder_meetings))


def _invitation_of_finished_meeting(cutoff: datetime) -> sa.ColumnElement[bool]:
    known_meeting = sa.exists().where(
        reminder_meetings.c.school_id == reminder_invitations.c.school_id,
        reminder_meetings.c.meeting_id == reminder_invitations.c.meeting_id,
    )
    return sa.and_(reminder_invitations.c.invited_at <= cutoff, ~known_meeting, _meeting_done(reminder_invitations))


def rules() -> list[RetentionRule]:
    return [
        RetentionRule(
            name="reminders.after_meeting",
            table=reminders,
            holds="Each reminder with what it needs when it falls due: the meeting's details and the guardian's "
            "name, language and contact details.",
            window=Window.PERSONAL_DATA,
            expired=_started_before,
            of_guardian=rows_of_guardian(reminders),
        ),
        RetentionRule(
            name="reminders.meetings",
            table=reminder_meetings,
            holds="Each meeting's first time and place, to say in a reminder that it moved.",
            window=Window.PERSONAL_DATA,
            expired=_meeting_long_started,
        ),
        RetentionRule(
            name="reminders.invitations",
            table=reminder_invitations,
            holds="Which guardians were invited when (ids and times), so a guardian added late is not reminded "
            "before their invitation.",
            window=Window.PERSONAL_DATA,
            expired=_invitation_of_finished_meeting,
            of_guardian=rows_of_guardian(reminder_invitations),
        ),
    ]
