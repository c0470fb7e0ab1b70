"""The booking invitation: when a round's booking window opens, every guardian who may book gets their personal
link by email and SMS, in their language (docs/talks.md, "The invitation").

Every replica runs the loop. A guardian's invitation for a pupil is claimed in the delivery ledger under a key
made of school, round, pupil and guardian, so two replicas (or a restart half way) send it once; once handed
over it is noted in `talk_invited`, so the loop does not look at it again. A pupil or guardian a later offer
adds is invited on the loop's next turn; a window that opens later is waited for.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from notify_responses.repeating import RepeatingTask
from notify_responses.talks_contacts import TalkContact, contacts
from notify_responses.talks_store import guardians, metadata, pupils, rounds
from notify_shared.answer_links import AnswerLinkKeys, booking_url
from notify_shared.contract import Channel, School
from notify_shared.delivery import Dispatcher, PlannedNotification, SourceEventRef
from notify_shared.ids import service_source
from notify_shared.ledger.database import insert_ignoring_conflicts, utc_from_db
from notify_shared.quiet_hours import QuietHours

logger = logging.getLogger(__name__)

TEMPLATE = "talk_invitation"
SOURCE = service_source("responses")
CHECK_INTERVAL_SECONDS = 30.0
"""How often the loop looks for guardians to invite: an invitation goes at most this long after the opening."""
_IDS = uuid.UUID("c0b7f0d4-3f5e-4a51-8f0e-77d1a5c6e912")
"""Namespace of the ids derived from (school, round, pupil, guardian): the ledger key of an invitation."""

invited = sa.Table(
    "talk_invited",
    metadata,
    sa.Column("school_id", sa.String(200), primary_key=True),
    sa.Column("round_id", sa.String(200), primary_key=True),
    sa.Column("pupil_id", sa.String(200), primary_key=True),
    sa.Column("guardian_id", sa.String(200), primary_key=True),
    sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
)


def invitation_id(school_id: str, round_id: str, pupil_id: str, guardian_id: str) -> str:
    return str(uuid.uuid5(_IDS, f"{school_id}/{round_id}/{pupil_id}/{guardian_id}"))


class BookingInviter:
    """Sends the booking invitations of open rounds that have not gone out yet."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        dispatcher: Dispatcher,
        keys: AnswerLinkKeys,
        public_base_url: str,
        quiet_hours: QuietHours,
        clock: Callable[[], datetime],
        interval_seconds: float = CHECK_INTERVAL_SECONDS,
    ) -> None:
        self._engine = engine
        self._dispatcher = dispatcher
        self._keys = keys
        self._public_base_url = public_base_url
        self._quiet_hours = quiet_hours
        self._clock = clock
        self._loop = RepeatingTask(
            self.invite_due,
            interval_seconds=interval_seconds,
            name="responses-talk-inviter",
            what="sending booking invitations",
        )
        self.start = self._loop.start
        self.stop = self._loop.stop

    async def invite_due(self, *, batch: int = 200) -> int:
        """Invite every guardian of an open round not yet invited; returns how many (pupil, guardian) pairs."""
        done = 0
        while True:
            now = self._clock()
            due = await self._due(now, batch)
            for row in due:
                await self._invite(row, now)
            done += len(due)
            if len(due) < batch:
                return done

    async def _due(self, now: datetime, limit: int) -> list[sa.RowMapping]:
        already = sa.exists().where(
            invited.c.school_id == guardians.c.school_id,
            invited.c.round_id == guardians.c.round_id,
            invited.c.pupil_id == guardians.c.pupil_id,
            invited.c.guardian_id == guardians.c.guardian_id,
        )
        query = (
            sa.select(
                rounds.c.school_id,
                rounds.c.round_id,
                rounds.c.school_name,
                rounds.c.timezone,
                rounds.c.written_standard,
                rounds.c.closes_at,
                pupils.c.pupil_id,
                pupils.c.first_name,
                guardians.c.guardian_id,
                guardians.c.language,
                contacts.c.email,
                contacts.c.phone,
                contacts.c.channels,
                contacts.c.sms_sender_id,
            )
            .select_from(guardians)
            .join(
                rounds, sa.and_(rounds.c.school_id == guardians.c.school_id, rounds.c.round_id == guardians.c.round_id)
            )
            .join(
                pupils,
                sa.and_(
                    pupils.c.school_id == guardians.c.school_id,
                    pupils.c.round_id == guardians.c.round_id,
                    pupils.c.pupil_id == guardians.c.pupil_id,
                ),
            )
            .join(
                contacts,
                sa.and_(
                    contacts.c.school_id == guardians.c.school_id,
                    contacts.c.round_id == guardians.c.round_id,
                    contacts.c.guardian_id == guardians.c.guardian_id,
                ),
            )
            .where(rounds.c.opens_at <= now, rounds.c.closes_at > now, ~already)
            .order_by(rounds.c.opens_at, guardians.c.school_id, guardians.c.round_id, guardians.c.reference)
            .limit(limit)
        )
        async with self._engine.connect() as connection:
            return list((await connection.execute(query)).mappings().all())

    async def _invite(self, row: sa.RowMapping, now: datetime) -> None:
        data = row
        school_id, round_id = str(data["school_id"]), str(data["round_id"])
        pupil_id, guardian_id = str(data["pupil_id"]), str(data["guardian_id"])
        closes_at = utc_from_db(data["closes_at"])
        school = School(
            id=school_id,
            name=str(data["school_name"]),
            timezone=str(data["timezone"]),
            written_standard="nn" if data["written_standard"] == "nn" else "nb",
            sms_sender_id=str(data["sms_sender_id"]),
        )
        guardian = TalkContact(
            guardian_id=guardian_id,
            language=str(data["language"]),
            email=data["email"],
            phone=data["phone"],
            channels=tuple(Channel(value) for value in str(data["channels"]).split(",") if value),
            sms_sender_id=school.sms_sender_id,
        ).recipient()
        token = self._keys.sign_booking(
            school_id=school_id, round_id=round_id, pupil_id=pupil_id, guardian_id=guardian_id, expires_at=closes_at
        )
        context = {
            "school": school,
            "guardian": guardian,
            "pupil_name": str(data["first_name"]),
            "closes_at": closes_at,
            "booking_url": booking_url(self._public_base_url, token),
        }
        source = SourceEventRef(
            source=SOURCE,
            id=invitation_id(school_id, round_id, pupil_id, guardian_id),
            type="talks.invitation",
            time=now,
        )
        morning = self._quiet_hours.end_after(now, school.zone)
        plans = [
            PlannedNotification(
                source=source,
                school=school,
                guardian=guardian,
                channel=channel,
                template=TEMPLATE,
                context=context,
                # No invitation goes out once booking has closed, retries included.
                not_after=closes_at,
                not_before=morning if channel is Channel.SMS else None,
            )
            for channel in guardian.channels
        ]
        if plans:
            await self._dispatcher.dispatch(plans)
        async with self._engine.begin() as connection:
            await connection.execute(
                insert_ignoring_conflicts(invited, connection.dialect.name).values(
                    school_id=school_id, round_id=round_id, pupil_id=pupil_id, guardian_id=guardian_id, invited_at=now
                )
            )
        logger.info(
            "booking invitation for pupil %s in round %s of school %s to guardian %s: %d notifications",
            pupil_id,
            round_id,
            school_id,
            guardian_id,
            len(plans),
        )
