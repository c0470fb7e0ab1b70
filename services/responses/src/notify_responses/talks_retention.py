"""How long the responses service keeps a round of development talks (docs/privacy.md, docs/talks.md).

A round, its slots, its pupils (first names), the guardians who may book (ids and language) and the bookings are
needed until the last talk has taken place; they go the personal-data window after that. The school has every
booking as a `talk.booked` / `talk.moved` / `talk.cancelled` event. The rules run children first: a booking holds
on to its slot by a foreign key.

Erasing a guardian deletes their booking links (they can no longer book). A booking they made stays with the
pupil until the round goes, since the other guardian and the school still count on it; it names the guardian by
id only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from notify_responses.talks_contacts import contacts
from notify_responses.talks_invitations import invited
from notify_responses.talks_store import bookings, guardians, pupils, rounds, slots
from notify_shared.retention.rules import RetentionRule, rows_of_guardian
from notify_shared.retention.windows import Window


def _round_over(table: sa.Table) -> Callable[[datetime], sa.ColumnElement[bool]]:
    """The rows of rounds whose last talk ended before the cutoff."""

    def expired(cutoff: datetime) -> sa.ColumnElement[bool]:
        return sa.exists().where(
            rounds.c.school_id == table.c.school_id,
            rounds.c.round_id == table.c.round_id,
            rounds.c.last_talk_ends_at <= cutoff,
        )

    return expired


def rules() -> list[RetentionRule]:
    return [
        RetentionRule(
            name="talks.bookings",
            table=bookings,
            holds="Which slot each pupil holds and which guardian (id) booked it: to show and keep the booking.",
            window=Window.PERSONAL_DATA,
            expired=_round_over(bookings),
        ),
        RetentionRule(
            name="talks.guardians",
            table=guardians,
            holds="Which guardians (ids) may book which pupil's talk, in which language: the booking links.",
            window=Window.PERSONAL_DATA,
            expired=_round_over(guardians),
            of_guardian=rows_of_guardian(guardians),
        ),
        RetentionRule(
            name="talks.contacts",
            table=contacts,
            holds="The email address and phone number of each guardian who may book: where confirmations go.",
            window=Window.PERSONAL_DATA,
            expired=_round_over(contacts),
            of_guardian=rows_of_guardian(contacts),
        ),
        RetentionRule(
            name="talks.invited",
            table=invited,
            holds="Which guardians (ids) were sent their booking invitation for which pupil, and when.",
            window=Window.PERSONAL_DATA,
            expired=_round_over(invited),
            of_guardian=rows_of_guardian(invited),
        ),
        RetentionRule(
            name="talks.pupils",
            table=pupils,
            holds="The pupils of a round with their first names: the page says whose talk is booked.",
            window=Window.PERSONAL_DATA,
            expired=_round_over(pupils),
        ),
        RetentionRule(
            name="talks.slots",
            table=slots,
            holds="The times on offer, with teacher, room or video link.",
            window=Window.PERSONAL_DATA,
            expired=_round_over(slots),
        ),
        RetentionRule(
            name="talks.rounds",
            table=rounds,
            holds="The round's title, class, school and booking window.",
            window=Window.PERSONAL_DATA,
            expired=lambda cutoff: rounds.c.last_talk_ends_at <= cutoff,
        ),
    ]
