"""Confirmations of a development talk: a booking, a move and a cancellation, by email with a calendar file and
by SMS, to every guardian of the pupil who may book (docs/talks.md, "What the parents get").

Sent after the booking's transaction has committed, through the delivery core: each is claimed in the ledger
under a key derived from the booking (school, round, pupil), its sequence and what happened, so the same change
is never sent twice, whichever replica or retry gets to it. The calendar entry's UID is the same for a pupil's
talk in a round, whatever slot it moves to; SEQUENCE is the booking's, so each move replaces the entry, and a
cancellation (one above the last sequence) removes it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncEngine

from notify_responses.talks_contacts import TalkContact, contacts_of_pupil
from notify_responses.talks_store import BookingRow, RoundRow, SlotRow
from notify_shared.calendar_invites import CalendarMethod, MeetingCalendar, calendar_attachment
from notify_shared.contract import Channel, Meeting, MeetingKind, School
from notify_shared.delivery import Dispatcher, PlannedNotification, SourceEventRef
from notify_shared.ids import service_source
from notify_shared.quiet_hours import QuietHours

logger = logging.getLogger(__name__)

SOURCE = service_source("responses")
_IDS = uuid.UUID("6b1f6f0e-2f7c-4d55-9a54-1d3c2b9e8a77")
"""Namespace of the ids derived from a booking change: the ledger key of its confirmations."""


class TalkChangeKind(StrEnum):
    BOOKED = "booked"
    MOVED = "moved"
    CANCELLED = "cancelled"

    @property
    def template(self) -> str:
        return f"talk_{self.value}"


@dataclass(frozen=True)
class TalkChange:
    """A committed change of one pupil's booking; `booking` is the booking as it is now (or was, when cancelled)."""

    kind: TalkChangeKind
    round: RoundRow
    pupil_first_name: str
    booking: BookingRow
    slot: SlotRow
    at: datetime

    @property
    def sequence(self) -> int:
        # A cancellation must carry a SEQUENCE above the request it cancels, or calendars ignore it (RFC 5546).
        return self.booking.sequence + 1 if self.kind is TalkChangeKind.CANCELLED else self.booking.sequence

    @property
    def notification_id(self) -> str:
        """The same for the same change, on any replica: the ledger sends each guardian's confirmation once."""
        key = f"{self.round.school_id}/{self.round.round_id}/{self.booking.pupil_id}/{self.sequence}/{self.kind}"
        return str(uuid.uuid5(_IDS, key))


def talk_uid_id(round_row: RoundRow, pupil_id: str) -> str:
    """The meeting id behind the calendar UID: one per pupil and round, whatever slot the talk is in."""
    return f"talk-{round_row.round_id}-{pupil_id}"


def talk_as_meeting(change: TalkChange) -> Meeting:
    slot = change.slot
    return Meeting(
        meeting_id=talk_uid_id(change.round, change.booking.pupil_id),
        kind=MeetingKind.DEVELOPMENT_TALK,
        title=change.round.title,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        location=slot.place or slot.video_link or change.round.school_name,
        organizer_name=slot.teacher_name,
        pupil_present=change.round.pupil_present,
    )


class TalkConfirmer:
    """Plans and hands to the delivery core the confirmations of one committed booking change."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        dispatcher: Dispatcher,
        quiet_hours: QuietHours,
        organizer_email: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._engine = engine
        self._dispatcher = dispatcher
        self._quiet_hours = quiet_hours
        self._organizer_email = organizer_email
        self._clock = clock

    async def confirm(self, change: TalkChange) -> int:
        """Send the confirmations of `change`; returns how many notifications were handed over. Never raises:
        the booking stands whatever happens to its confirmation (the failure is logged, ids only)."""
        round_row = change.round
        try:
            contacts = await contacts_of_pupil(
                self._engine, round_row.school_id, round_row.round_id, change.booking.pupil_id
            )
            plans = self.plan(change, contacts)
            if plans:
                await self._dispatcher.dispatch(plans)
        except Exception as error:
            logger.warning(
                "talk %s confirmation for pupil %s in round %s of school %s not sent: %s",
                change.kind.value,
                change.booking.pupil_id,
                round_row.round_id,
                round_row.school_id,
                type(error).__name__,
            )
            return 0
        logger.info(
            "talk %s confirmation for pupil %s in round %s of school %s: %d notifications to %d guardians",
            change.kind.value,
            change.booking.pupil_id,
            round_row.round_id,
            round_row.school_id,
            len(plans),
            len(contacts),
        )
        return len(plans)

    def plan(self, change: TalkChange, contacts: list[TalkContact]) -> list[PlannedNotification]:
        if not contacts:
            return []
        round_row = change.round
        school = School(
            id=round_row.school_id,
            name=round_row.school_name,
            timezone=round_row.timezone,
            written_standard="nn" if round_row.written_standard == "nn" else "nb",
            sms_sender_id=contacts[0].sms_sender_id,
        )
        meeting = talk_as_meeting(change)
        method = CalendarMethod.CANCEL if change.kind is TalkChangeKind.CANCELLED else CalendarMethod.REQUEST
        calendar = MeetingCalendar(
            school=school,
            meeting=meeting,
            organizer_email=self._organizer_email,
            method=method,
            sequence=change.sequence,
            stamp=change.at,
        )
        now = self._clock()
        morning = self._quiet_hours.end_after(now, school.zone)
        source = SourceEventRef(source=SOURCE, id=change.notification_id, type=f"talk.{change.kind}", time=change.at)
        plans: list[PlannedNotification] = []
        for contact in contacts:
            guardian = contact.recipient()
            attachments = (
                (calendar_attachment(calendar.for_guardian(guardian), method),)
                if guardian.contact_problem(Channel.EMAIL) is None
                else ()
            )
            context = {
                "school": school,
                "guardian": guardian,
                "meeting": meeting,
                "pupil_name": change.pupil_first_name,
            }
            for channel in guardian.channels:
                plans.append(
                    PlannedNotification(
                        source=source,
                        school=school,
                        guardian=guardian,
                        channel=channel,
                        template=change.kind.template,
                        context=context,
                        attachments=attachments,
                        # A phone buzzing at night waits for the morning, unless the talk is before then.
                        not_before=morning
                        if channel is Channel.SMS and morning is not None and morning < meeting.starts_at
                        else None,
                    )
                )
        return plans
