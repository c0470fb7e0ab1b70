"""Development-talk booking, free of Kafka and HTTP: apply an offer, show a booking link, book, move, cancel.

The rules and why they hold with several replicas are in `notify_responses.talks_store`. Every change and the
event telling the admin system of it (`talk.booked`, `talk.moved`, `talk.cancelled`) are written in one
transaction; the outbox relay publishes the events.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from notify_responses import talks_events
from notify_responses import talks_store as db
from notify_responses.service import Clock
from notify_responses.store import OutboxEvent
from notify_responses.talks_confirmations import TalkChange, TalkChangeKind
from notify_responses.talks_contacts import replace_contacts
from notify_responses.talks_store import BookingRow, BookingView, GuardianRow, RoundRow
from notify_shared.answer_links import AnswerLinkKeys, Rejection, TokenRejectedError
from notify_shared.contract import (
    CancellationReason,
    TalksOffered,
)
from notify_shared.rendering.languages import choose_language

logger = logging.getLogger(__name__)


class PageState(StrEnum):
    """What a booking link leads to now."""

    OPEN = "open"
    """The slots, and the booking form (200)."""
    NOT_YET_OPEN = "not_yet_open"
    """Genuine, but booking opens later: the page says when (200)."""
    CLOSED = "closed"
    """Booking has closed (410)."""
    INVALID = "invalid"
    """Not a genuine link, a retired key, a guardian who may not book, or a round this service does not know
    (404): one page for all, so it tells nothing about what the link might have been for."""


@dataclass(frozen=True)
class BookingPage:
    state: PageState
    language: str
    view: BookingView | None = None
    rejection: Rejection | None = None


class Outcome(StrEnum):
    """What a POST to a booking link did; also the `result` label of the bookings metric."""

    BOOKED = "booked"
    MOVED = "moved"
    CANCELLED = "cancelled"
    UNCHANGED = "unchanged"
    """The pupil already held that slot, or had nothing to cancel."""
    TAKEN = "taken"
    """Another pupil holds the slot (or it was withdrawn): the page shows the slots still free."""
    OVERLAP = "overlap"
    """A guardian of this pupil holds a talk for another child at an overlapping time."""
    NO_CHOICE = "no_choice"
    """The form named no slot."""
    CLOSED = "closed"
    """The link does not take bookings now (see `BookingPage.state`)."""


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    page: BookingPage


class TalksService:
    """Offers in, bookings out; safe to call again with the same event or form."""

    def __init__(
        self,
        *,
        store: db.TalkStore,
        keys: AnswerLinkKeys,
        clock: Clock = lambda: datetime.now(UTC),
        on_queued: Callable[[], None] = lambda: None,
        on_changed: Callable[[TalkChange], Awaitable[object]] | None = None,
    ) -> None:
        self._store = store
        self._keys = keys
        self._clock = clock
        self._on_queued = on_queued
        self._on_changed = on_changed
        """Called after a booking change has committed: sends the guardians their confirmations."""

    def now(self) -> datetime:
        return self._clock().astimezone(UTC)

    async def apply_offer(self, event: TalksOffered) -> bool:
        """Store the round as `event` offers it, unless an offer with the same or a newer `time` was applied.
        Bookings of withdrawn slots or pupils are cancelled, each with its `talk.cancelled`. Returns whether the
        offer was applied."""
        offer = talks_events.offer_of(event, self.now())
        row = offer.round
        offered_slots = {slot.slot_id for slot in offer.slots}
        offered_pupils = {pupil.pupil_id for pupil in offer.pupils}
        cancelled = 0
        withdrawn: list[TalkChange] = []
        first_names = {pupil.pupil_id: pupil.first_name for pupil in offer.pupils}
        async with self._store.engine.begin() as connection:
            current = await db.lock_round(connection, row.school_id, row.round_id, exclusive=True)
            if current is not None and current.offered_at >= row.offered_at:
                logger.info(
                    "event %s: round %s of school %s: an equal or newer offer applied",
                    event.id,
                    row.round_id,
                    row.school_id,
                )
                return False
            for booking in await db.round_bookings(connection, row.school_id, row.round_id):
                if booking.slot_id in offered_slots and booking.pupil_id in offered_pupils:
                    continue
                reason = (
                    CancellationReason.PUPIL_WITHDRAWN
                    if booking.pupil_id not in offered_pupils
                    else CancellationReason.SLOT_WITHDRAWN
                )
                await db.delete_booking(connection, row.school_id, row.round_id, booking.pupil_id)
                slot = await db.slot_of(connection, row.school_id, row.round_id, booking.slot_id)
                assert slot is not None, "a booking's slot exists (foreign key)"
                event_out = talks_events.cancelled_event(
                    row, booking, slot, reason=reason, guardian_id=None, at=self.now()
                )
                await db.queue(connection, event_out, at=self.now())
                cancelled += 1
                if reason is CancellationReason.SLOT_WITHDRAWN:
                    # A pupil who left the round is not told; a family whose time was withdrawn books again.
                    withdrawn.append(
                        TalkChange(
                            TalkChangeKind.CANCELLED, row, first_names[booking.pupil_id], booking, slot, self.now()
                        )
                    )
            await db.save_round(connection, row, exists=current is not None)
            if row.closes_at > self.now():
                # An offer that moves the closing time later reopens a round already announced closed: it is
                # announced again when the new time comes.
                await db.mark_closed(connection, row.school_id, row.round_id, None)
            await db.replace_slots(connection, row.school_id, row.round_id, offer.slots)
            await db.replace_pupils(connection, offer)
            await replace_contacts(
                connection,
                row.school_id,
                row.round_id,
                event.data.school.sms_sender_id,
                (
                    guardian
                    for pupil in event.data.pupils
                    for guardian in pupil.guardians
                    if guardian.may_receive_routine_notifications
                ),
            )
        if cancelled:
            self._on_queued()
        for change in withdrawn:
            await self._changed(change)
        logger.info(
            "event %s: round %s of school %s offered: %d slots, %d pupils, %d guardians may book, %d bookings "
            "cancelled",
            event.id,
            row.round_id,
            row.school_id,
            len(offer.slots),
            len(offer.pupils),
            len(offer.guardians),
            cancelled,
        )
        return True

    async def close_due_rounds(self, *, batch: int = 20) -> int:
        """Announce every round whose booking window has closed: one `talks.round_closed` each, with the pupils
        still without a booking, queued in the transaction that marks the round closed (so exactly one, across
        replicas and restarts). Returns how many rounds were closed."""
        closed = 0
        while True:
            now = self.now()
            async with self._store.engine.begin() as connection:
                due = await db.rounds_to_close(connection, now, batch)
                for round_row in due:
                    without = await db.pupils_without_booking(connection, round_row.school_id, round_row.round_id)
                    booked = len(await db.round_bookings(connection, round_row.school_id, round_row.round_id))
                    await db.queue(
                        connection, talks_events.round_closed_event(round_row, without, booked, at=now), at=now
                    )
                    await db.mark_closed(connection, round_row.school_id, round_row.round_id, now)
                    logger.info(
                        "round %s of school %s closed: %d booked, %d without a booking",
                        round_row.round_id,
                        round_row.school_id,
                        booked,
                        len(without),
                    )
            closed += len(due)
            if due:
                self._on_queued()
            if len(due) < batch:
                return closed

    async def page(self, token: str) -> BookingPage:
        """What `token` leads to now. Reads only: opening a link never changes anything."""
        now = self.now()
        try:
            link = self._keys.verify(token, now=now)
        except TokenRejectedError as rejected:
            if rejected.reason is Rejection.EXPIRED and rejected.invitation is not None:
                view = await self._store.view(rejected.invitation.hex())
                if view is not None:
                    return BookingPage(PageState.CLOSED, _language_of(view), view, rejected.reason)
            return BookingPage(PageState.INVALID, _language_of(None), rejection=rejected.reason)
        view = await self._store.view(link.invitation.hex())
        return BookingPage(_state_of(view, now), _language_of(view), view)

    async def book(self, token: str, slot_id: str | None) -> Attempt:
        """Book `slot_id` for the link's pupil, or move the pupil's booking there."""
        page = await self.page(token)
        if page.state is not PageState.OPEN or page.view is None:
            return Attempt(Outcome.CLOSED, page)
        if not slot_id:
            return Attempt(Outcome.NO_CHOICE, page)
        reference = page.view.guardian.reference
        try:
            async with self._store.engine.begin() as connection:
                outcome, event, change = await self._book_in(connection, reference, slot_id, page.view.pupil.first_name)
        except IntegrityError:
            # The slot's unique key: another pupil's booking of it committed first.
            outcome, event, change = Outcome.TAKEN, None, None
        if change is not None:
            await self._changed(change)
        return await self._after(token, outcome, event)

    async def cancel(self, token: str) -> Attempt:
        """Cancel the link's pupil's booking, if there is one."""
        page = await self.page(token)
        if page.state is not PageState.OPEN or page.view is None:
            return Attempt(Outcome.CLOSED, page)
        async with self._store.engine.begin() as connection:
            outcome, event, change = await self._cancel_in(
                connection, page.view.guardian.reference, page.view.pupil.first_name
            )
        if change is not None:
            await self._changed(change)
        return await self._after(token, outcome, event)

    async def _changed(self, change: TalkChange) -> None:
        if self._on_changed is not None:
            await self._on_changed(change)

    async def _after(self, token: str, outcome: Outcome, event: OutboxEvent | None) -> Attempt:
        page = await self.page(token)
        if event is not None:
            self._on_queued()
            view = page.view
            logger.info(
                "talk %s for pupil %s in round %s of school %s by guardian %s: event %s queued",
                outcome.value,
                view.pupil.pupil_id if view else None,
                view.round.round_id if view else None,
                view.round.school_id if view else None,
                view.guardian.guardian_id if view else None,
                event.event_id,
            )
        return Attempt(outcome, page)

    async def _open_round(self, connection: AsyncConnection, reference: str) -> tuple[RoundRow, GuardianRow] | None:
        found = await db.guardian_by_reference(connection, reference)
        if found is None:
            return None
        school_id, round_id, guardian = found
        round_row = await db.lock_round(connection, school_id, round_id, exclusive=False)
        # Checked again inside the transaction: the window may have closed, or a new offer shortened it, since.
        if round_row is None or not round_row.opens_at <= self.now() < round_row.closes_at:
            return None
        return round_row, guardian

    async def _book_in(
        self, connection: AsyncConnection, reference: str, slot_id: str, first_name: str
    ) -> tuple[Outcome, OutboxEvent | None, TalkChange | None]:
        opened = await self._open_round(connection, reference)
        if opened is None:
            return Outcome.CLOSED, None, None
        round_row, guardian = opened
        school_id, round_id, pupil_id = round_row.school_id, round_row.round_id, guardian.pupil_id
        guardian_ids = await db.lock_guardians_of(connection, school_id, round_id, pupil_id)
        slot = await db.slot_of(connection, school_id, round_id, slot_id)
        if slot is None:
            return Outcome.TAKEN, None, None
        current = await db.booking_of(connection, school_id, round_id, pupil_id)
        if current is not None and current.slot_id == slot_id:
            return Outcome.UNCHANGED, None, None
        if await db.overlapping_sibling_booking(
            connection,
            school_id,
            round_id,
            pupil_id=pupil_id,
            guardian_ids=guardian_ids,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
        ):
            return Outcome.OVERLAP, None, None
        now = self.now()
        booking = BookingRow(
            pupil_id=pupil_id,
            slot_id=slot.slot_id,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            guardian_id=guardian.guardian_id,
            booked_at=now,
            sequence=current.sequence + 1 if current is not None else 0,
        )
        if current is None:
            await connection.execute(
                db.bookings.insert().values(school_id=school_id, round_id=round_id, **vars(booking))
            )
            event = talks_events.booked_event(round_row, booking, slot)
            outcome = Outcome.BOOKED
        else:
            await connection.execute(
                db.bookings.update()
                .where(
                    db.bookings.c.school_id == school_id,
                    db.bookings.c.round_id == round_id,
                    db.bookings.c.pupil_id == pupil_id,
                )
                .values(**vars(booking))
            )
            event = talks_events.moved_event(round_row, booking, slot, previous_slot_id=current.slot_id)
            outcome = Outcome.MOVED
        await db.queue(connection, event, at=now)
        kind = TalkChangeKind.BOOKED if outcome is Outcome.BOOKED else TalkChangeKind.MOVED
        return outcome, event, TalkChange(kind, round_row, first_name, booking, slot, now)

    async def _cancel_in(
        self, connection: AsyncConnection, reference: str, first_name: str
    ) -> tuple[Outcome, OutboxEvent | None, TalkChange | None]:
        opened = await self._open_round(connection, reference)
        if opened is None:
            return Outcome.CLOSED, None, None
        round_row, guardian = opened
        school_id, round_id = round_row.school_id, round_row.round_id
        await db.lock_guardians_of(connection, school_id, round_id, guardian.pupil_id)
        current = await db.booking_of(connection, school_id, round_id, guardian.pupil_id)
        if current is None:
            return Outcome.UNCHANGED, None, None
        slot = await db.slot_of(connection, school_id, round_id, current.slot_id)
        assert slot is not None, "a booking's slot exists (foreign key)"
        await db.delete_booking(connection, school_id, round_id, guardian.pupil_id)
        now = self.now()
        event = talks_events.cancelled_event(
            round_row, current, slot, reason=CancellationReason.BY_GUARDIAN, guardian_id=guardian.guardian_id, at=now
        )
        await db.queue(connection, event, at=now)
        return Outcome.CANCELLED, event, TalkChange(TalkChangeKind.CANCELLED, round_row, first_name, current, slot, now)


def _state_of(view: BookingView | None, now: datetime) -> PageState:
    if view is None:
        return PageState.INVALID
    if now < view.round.opens_at:
        return PageState.NOT_YET_OPEN
    if now >= view.round.closes_at:
        return PageState.CLOSED
    return PageState.OPEN


def _language_of(view: BookingView | None) -> str:
    if view is None:
        return choose_language(None, None)
    return choose_language(view.guardian.language, view.round.written_standard)
