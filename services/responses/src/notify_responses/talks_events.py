"""What development talks tell the admin system, and what an offer means for the tables: the events queued in the
outbox (`talk.booked`, `talk.moved`, `talk.cancelled`, `talks.round_closed`) and the rows of a `talks.offered`."""

from __future__ import annotations

from datetime import UTC, datetime

from notify_responses.service import SOURCE
from notify_responses.store import OutboxEvent
from notify_responses.talks_store import BookingRow, GuardianRow, Offer, PupilRow, RoundRow, SlotRow
from notify_shared.answer_links import booking_reference
from notify_shared.contract import (
    CancellationReason,
    CloudEvent,
    RoundClosure,
    TalkBooked,
    TalkBooking,
    TalkCancellation,
    TalkCancelled,
    TalkMove,
    TalkMoved,
    TalksOffered,
    TalksRoundClosed,
    partition_key,
)
from notify_shared.ids import new_event_id


def offer_of(event: TalksOffered, now: datetime) -> Offer:
    data = event.data
    school = data.school
    teacher_names = {teacher.teacher_id: teacher.name for teacher in data.teachers}
    slots = [
        SlotRow(
            slot_id=slot.slot_id,
            starts_at=slot.starts_at.astimezone(UTC),
            ends_at=slot.ends_at.astimezone(UTC),
            teacher_id=slot.teacher_id,
            teacher_name=teacher_names[slot.teacher_id],
            place=slot.place,
            video_link=slot.video_link,
        )
        for slot in data.slots
    ]
    guardians = [
        GuardianRow(
            reference=booking_reference(school.id, data.round_id, pupil.pupil_id, guardian.guardian_id).hex(),
            pupil_id=pupil.pupil_id,
            guardian_id=guardian.guardian_id,
            language=guardian.language,
        )
        for pupil in data.pupils
        for guardian in pupil.guardians
        # A guardian without parental responsibility, or blocked by the school, gets no link and cannot book.
        if guardian.may_receive_routine_notifications
    ]
    round_row = RoundRow(
        school_id=school.id,
        round_id=data.round_id,
        school_name=school.name,
        title=data.title,
        class_name=data.class_name,
        timezone=school.timezone,
        written_standard=school.written_standard,
        pupil_present=data.pupil_present,
        opens_at=data.booking_opens_at.astimezone(UTC),
        closes_at=data.booking_closes_at.astimezone(UTC),
        last_talk_ends_at=max((slot.ends_at for slot in slots), default=data.booking_closes_at.astimezone(UTC)),
        offered_at=(event.time or now).astimezone(UTC),
    )
    pupils = [PupilRow(pupil.pupil_id, pupil.first_name) for pupil in data.pupils]
    return Offer(round_row, slots, pupils, guardians)


def _facts(round_row: RoundRow, booking: BookingRow, slot: SlotRow) -> dict[str, object]:
    return {
        "school_id": round_row.school_id,
        "round_id": round_row.round_id,
        "pupil_id": booking.pupil_id,
        "slot_id": slot.slot_id,
        "starts_at": slot.starts_at,
        "ends_at": slot.ends_at,
        "teacher_id": slot.teacher_id,
    }


def booked_event(round_row: RoundRow, booking: BookingRow, slot: SlotRow) -> OutboxEvent:
    data = TalkBooking.model_validate(
        _facts(round_row, booking, slot) | {"guardian_id": booking.guardian_id, "booked_at": booking.booked_at}
    )
    return _outbox_event(
        TalkBooked(id=new_event_id(), source=SOURCE, time=booking.booked_at, subject=round_row.round_id, data=data)
    )


def moved_event(round_row: RoundRow, booking: BookingRow, slot: SlotRow, *, previous_slot_id: str) -> OutboxEvent:
    data = TalkMove.model_validate(
        _facts(round_row, booking, slot)
        | {"guardian_id": booking.guardian_id, "previous_slot_id": previous_slot_id, "moved_at": booking.booked_at}
    )
    return _outbox_event(
        TalkMoved(id=new_event_id(), source=SOURCE, time=booking.booked_at, subject=round_row.round_id, data=data)
    )


def cancelled_event(
    round_row: RoundRow,
    booking: BookingRow,
    slot: SlotRow,
    *,
    reason: CancellationReason,
    guardian_id: str | None,
    at: datetime,
) -> OutboxEvent:
    data = TalkCancellation.model_validate(
        _facts(round_row, booking, slot) | {"reason": reason, "guardian_id": guardian_id, "cancelled_at": at}
    )
    return _outbox_event(
        TalkCancelled(id=new_event_id(), source=SOURCE, time=at, subject=round_row.round_id, data=data)
    )


def round_closed_event(round_row: RoundRow, without: list[str], booked: int, *, at: datetime) -> OutboxEvent:
    data = RoundClosure(
        school_id=round_row.school_id,
        round_id=round_row.round_id,
        closed_at=at,
        booked=booked,
        pupils_without_booking=tuple(without),
    )
    return _outbox_event(
        TalksRoundClosed(id=new_event_id(), source=SOURCE, time=at, subject=round_row.round_id, data=data)
    )


def _outbox_event(event: CloudEvent) -> OutboxEvent:
    return OutboxEvent(
        position=0,  # given by the database
        event_id=event.id,
        event_type=event.type,
        key=partition_key(event),
        value=event.model_dump_json(exclude_none=True).encode(),
    )
