"""How long the digest service keeps messages, absence notices and digests (docs/privacy.md).

Items and notices carry message bodies, the school's and the guardian's details and the pupil's name: they go the
personal-data window after the digest or notice that carried them is final. A digest row holds ids, its slot and
its outcome, kept for the records window. What still waits for its digest or its due time is never touched.
Erasing a guardian deletes all of theirs, waiting ones too.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from notify_digest.store import State, digests, items, notices
from notify_shared.retention.rules import RetentionRule, rows_of_guardian
from notify_shared.retention.windows import Window

FINAL_STATES = [State.SENT.value, State.FAILED.value, State.SKIPPED.value]


def _final_before(table: sa.Table, cutoff: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.state.in_(FINAL_STATES), table.c.updated_at <= cutoff)


def _item_of_finished_digest(cutoff: datetime) -> sa.ColumnElement[bool]:
    finished = sa.select(digests.c.digest_id).where(_final_before(digests, cutoff))
    return items.c.digest_id.in_(finished)


def rules() -> list[RetentionRule]:
    return [
        RetentionRule(
            name="digest.items",
            table=items,
            holds="Each message or absence waiting for a guardian's digest: its text, the school's and the "
            "guardian's details, the pupil's name.",
            window=Window.PERSONAL_DATA,
            expired=_item_of_finished_digest,
            of_guardian=rows_of_guardian(items),
        ),
        RetentionRule(
            name="digest.notices",
            table=notices,
            holds="Each urgent message or absence notice until it is sent: its text, the school's and the "
            "guardian's details, the pupil's name.",
            window=Window.PERSONAL_DATA,
            expired=lambda cutoff: _final_before(notices, cutoff),
            of_guardian=rows_of_guardian(notices),
        ),
        RetentionRule(
            name="digest.digests",
            table=digests,
            holds="Each digest's ids, slot and outcome (no content): so one slot is sent once, and for operators.",
            window=Window.RECORDS,
            expired=lambda cutoff: sa.and_(
                _final_before(digests, cutoff), ~sa.exists().where(items.c.digest_id == digests.c.digest_id)
            ),
            of_guardian=rows_of_guardian(digests),
        ),
    ]
