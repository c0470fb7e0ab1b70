"""How long the invitations service keeps what it knows of each meeting (docs/privacy.md).

A meeting's state holds its last announced details (title, agenda, place, organiser) and the ids of the guardians
invited; each decision holds the details as they were before that event. Both are needed while updates may come,
so they go the personal-data window after the meeting has ended. Ids of guardians only: nothing per guardian to
erase here (the ledger and the other services hold that).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from notify_invitations.meeting_states import meeting_decisions, meeting_states
from notify_shared.retention.rules import RetentionRule
from notify_shared.retention.windows import Window


def _ended_before(cutoff: datetime) -> sa.ColumnElement[bool]:
    return meeting_states.c.ends_at <= cutoff


def _state_gone(_: datetime) -> sa.ColumnElement[bool]:
    # Runs after the states' rule: a decision outlives its meeting's state by no more than one run.
    of_this_meeting = sa.and_(
        meeting_states.c.school_id == meeting_decisions.c.school_id,
        meeting_states.c.meeting_id == meeting_decisions.c.meeting_id,
    )
    return ~sa.exists().where(of_this_meeting)


def rules() -> list[RetentionRule]:
    return [
        RetentionRule(
            name="invitations.meeting_states",
            table=meeting_states,
            holds="The meeting's last announced details (title, agenda, place, organiser) and the invited "
            "guardians' ids: to tell a real change from a repeat and to know whom to tell.",
            window=Window.PERSONAL_DATA,
            expired=_ended_before,
        ),
        RetentionRule(
            name="invitations.decisions",
            table=meeting_decisions,
            holds="What each meeting event meant, with the details before it: so a redelivered event sends the "
            "same notifications, with the same calendar sequence.",
            window=Window.PERSONAL_DATA,
            expired=_state_gone,
        ),
    ]
