"""How long the responses service keeps meetings, invitations and answers (docs/privacy.md).

A meeting, its invitations (with the guardians' phone numbers, to match SMS replies) and the answers (with the
parents' comments) are needed until answers close at the meeting's start, and to show the "this meeting has
passed" page a little after; they go the personal-data window after the meeting ended. The school has every
answer as a `meeting.rsvp` event. Published outbox events and the ids of SMS replies seen go the same window
after they were published or received, and the numbers that got an automatic SMS answer the window after that
answer's day. Erasing a guardian deletes their invitations, answers and automatic-answer rows; an answer not
yet published stays in the outbox until it is, then goes with the window.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from notify_responses.auto_reply_cap import auto_replies
from notify_responses.store import answers, invitations, meetings, outbox, sms_replies
from notify_responses.talks_retention import rules as talk_rules
from notify_shared.retention.rules import RetentionRule, rows_of_guardian
from notify_shared.retention.windows import Window


def rules() -> list[RetentionRule]:
    # Invitations and answers before their meetings: each rule finds its rows through the meeting's end. The
    # development talks' rules (notify_responses.talks_retention) come first: their tables hold no outbox rows.
    return [
        *talk_rules(),
        # Before the invitations: a guardian's numbers are found through them when the guardian is erased.
        RetentionRule(
            name="responses.auto_replies",
            table=auto_replies,
            holds="The numbers that got an automatic SMS answer, and the day: at most one a day per number.",
            window=Window.PERSONAL_DATA,
            # Needed until the end of its day (at most a day after it was sent), then the window runs.
            expired=lambda cutoff: auto_replies.c.sent_at <= cutoff - timedelta(days=1),
            of_guardian=lambda school_id, guardian_id: auto_replies.c.phone.in_(
                sa.select(invitations.c.phone).where(
                    invitations.c.school_id == school_id,
                    invitations.c.guardian_id == guardian_id,
                    invitations.c.phone.is_not(None),
                )
            ),
        ),
        RetentionRule(
            name="responses.invitations",
            table=invitations,
            holds="Who was invited to which meeting, in which language, with the phone number an SMS reply may "
            "come from: to show the page and to match replies.",
            window=Window.PERSONAL_DATA,
            expired=lambda cutoff: sa.exists().where(
                meetings.c.school_id == invitations.c.school_id,
                meetings.c.meeting_id == invitations.c.meeting_id,
                meetings.c.ends_at <= cutoff,
            ),
            of_guardian=rows_of_guardian(invitations),
        ),
        RetentionRule(
            name="responses.answers",
            table=answers,
            holds="Each guardian's latest answer, interpreter language and comment: to show it on the page and to "
            "publish only real changes.",
            window=Window.PERSONAL_DATA,
            expired=lambda cutoff: sa.exists().where(
                meetings.c.school_id == answers.c.school_id,
                meetings.c.meeting_id == answers.c.meeting_id,
                meetings.c.ends_at <= cutoff,
            ),
            of_guardian=rows_of_guardian(answers),
        ),
        RetentionRule(
            name="responses.meetings",
            table=meetings,
            holds="The meeting's title, time, place and school: what the answer page shows.",
            window=Window.PERSONAL_DATA,
            expired=lambda cutoff: meetings.c.ends_at <= cutoff,
        ),
        RetentionRule(
            name="responses.outbox",
            table=outbox,
            holds="Answer events (a guardian's answer and comment) until Kafka has them; published ones only for "
            "operators looking back.",
            window=Window.PERSONAL_DATA,
            expired=lambda cutoff: outbox.c.published_at <= cutoff,
        ),
        RetentionRule(
            name="responses.sms_replies",
            table=sms_replies,
            holds="The provider's ids of SMS replies received (no text, no number): a retried webhook is seen.",
            window=Window.PERSONAL_DATA,
            expired=lambda cutoff: sms_replies.c.received_at <= cutoff,
        ),
    ]
