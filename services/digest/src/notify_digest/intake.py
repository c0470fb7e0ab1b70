"""What each arriving event means for each guardian: send now, wait for a notice window, or wait for a digest.

- message.posted, urgent: to every eligible guardian at once, on each channel they want.
- message.posted, otherwise: `instant` guardians get it at once (or at the end of quiet hours); `daily` and
  `weekly` ones get it in their next digest; `off` ones not at all (status `skipped`). A guardian who gets no
  email counts as `instant`: a digest is an email.
- absence.noted: a notice the same day, after a debounce window that merges lesson-by-lesson events, by SMS
  where the guardian has a usable number and by email otherwise; unless the guardian reported it themselves.
  Every absence is also listed in the guardian's digest. The reason is never stored with what is sent.

Stored ids come from `_event_key` (school, source and event id), never the event id alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from notify_digest.settings import DigestSettings
from notify_digest.store import DigestStore, State, as_utc, stable_id
from notify_shared.contract import (
    AbsenceNoted,
    Channel,
    DeliveryMode,
    MessagePosted,
    NotedAbsence,
    PostedMessage,
    Recipient,
    School,
)
from notify_shared.delivery import PlannedNotification, SourceEventRef, unreachable_by

MESSAGE_NOTICE = "message_notice"
ABSENCE_NOTICE = "absence_notice"


@dataclass
class IntakeResult:
    """Notifications to send now, and ones that end without a send (guardian chose `off`)."""

    send_now: list[PlannedNotification] = field(default_factory=list)
    skipped: list[tuple[PlannedNotification, str]] = field(default_factory=list)
    stored_items: int = 0
    notices: int = 0


def message_section(message: PostedMessage, school: School) -> str:
    if message.pupil_first_name:
        return f"{message.pupil_first_name} ({message.class_name})" if message.class_name else message.pupil_first_name
    return message.class_name or school.name


def absence_section(absence: NotedAbsence) -> str:
    pupil = absence.pupil
    return f"{pupil.first_name} ({pupil.class_name})" if pupil.class_name else pupil.first_name


def _message_payload(message: PostedMessage) -> str:
    return json.dumps(
        {
            "subject": message.subject,
            "body": message.body,
            "author_name": message.author_name,
            "posted_at": message.posted_at.isoformat(),
            "urgent": message.urgent,
            "class_name": message.class_name,
        }
    )


def absence_payload(absence: NotedAbsence) -> str:
    """What a notice or digest needs of an absence: never the reason."""
    return json.dumps(
        {
            "pupil": absence.pupil.model_dump(mode="json"),
            "date": absence.date.isoformat(),
            "lessons": [lesson.model_dump(mode="json") for lesson in absence.lessons],
            "reported_by_guardian": absence.reported_by_guardian,
        }
    )


def merge_lessons(new: NotedAbsence) -> Callable[[str], str]:
    """Combine a stored absence payload with the lessons of a new event for the same pupil and day."""

    def merge(old_payload: str) -> str:
        old = json.loads(old_payload)
        if not old["lessons"] or not new.lessons:
            old["lessons"] = []  # a whole-day absence covers every lesson
        else:
            seen = {json.dumps(lesson, sort_keys=True) for lesson in old["lessons"]}
            for lesson in new.lessons:
                encoded = lesson.model_dump(mode="json")
                if json.dumps(encoded, sort_keys=True) not in seen:
                    old["lessons"].append(encoded)
            old["lessons"].sort(key=lambda lesson: (lesson.get("period") is None, lesson.get("period") or 0))
        return json.dumps(old)

    return merge


def _event_key(event: MessagePosted | AbsenceNoted) -> tuple[str, str, str]:
    # A CloudEvents id is unique per source only, and each school's systems choose theirs: another school's event
    # with the same id must get its own items and notices, not be taken for a redelivery of this one.
    return (event.data.school.id, event.source, event.id)


def absence_notice_channel(guardian: Recipient) -> Channel:
    """The one channel an absence notice goes by: SMS where the guardian lists it and the number takes SMS, else
    email (docs/contract.md, `channels`).

    One channel, not each one listed: the notice is a same-day heads-up, and an SMS and an email saying the same
    thing is the duplicate parents complain about. SMS first because it is read within minutes; if it fails, the
    dispatcher hands it to email where the guardian allowed both.
    """
    if Channel.SMS in guardian.channels and unreachable_by(guardian, Channel.SMS) is None:
        return Channel.SMS
    return Channel.EMAIL if Channel.EMAIL in guardian.channels else Channel.SMS


class Intake:
    """Applies message.posted and absence.noted events to the store and says what to send at once."""

    def __init__(self, store: DigestStore, settings: DigestSettings, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock

    def _mode(self, school: School, guardian: Recipient) -> DeliveryMode:
        mode = self._settings.mode_for(school.id, guardian.delivery_mode)
        if mode in (DeliveryMode.DAILY, DeliveryMode.WEEKLY) and Channel.EMAIL not in guardian.channels:
            return DeliveryMode.INSTANT
        return mode

    def _quiet_until(self, school: School, now: datetime) -> datetime | None:
        """The end of quiet hours when `now` is inside them, else None."""
        quiet = self._settings.quiet_hours
        local = now.astimezone(school.zone)
        if not quiet.contains(local.time()):
            return None
        end_day = local.date() if local.time() < quiet.end else local.date() + timedelta(days=1)
        return datetime.combine(end_day, quiet.end).replace(tzinfo=school.zone).astimezone(UTC)

    async def on_message(self, event: MessagePosted) -> IntakeResult:
        now = as_utc(self._clock())
        data = event.data
        result = IntakeResult()
        source = SourceEventRef.of_event(event)
        items: list[dict[str, object]] = []
        for guardian in data.recipients:
            plans = [
                PlannedNotification(
                    source=source,
                    school=data.school,
                    guardian=guardian,
                    channel=channel,
                    template=MESSAGE_NOTICE,
                    context={"school": data.school, "guardian": guardian, "message": data, "urgent": data.urgent},
                )
                for channel in guardian.channels
            ]
            mode = self._mode(data.school, guardian)
            if data.urgent or not guardian.may_receive_routine_notifications:
                result.send_now += plans  # ineligible guardians are screened out, with a `suppressed` status
            elif mode is DeliveryMode.OFF:
                result.skipped += [(plan, "delivery_mode_off") for plan in plans]
            elif mode is DeliveryMode.INSTANT:
                quiet_until = self._quiet_until(data.school, now)
                if quiet_until is None:
                    result.send_now += plans
                else:
                    await self._store.add_notice(
                        self._notice_row(
                            notice_id=stable_id(*_event_key(event), guardian.guardian_id, MESSAGE_NOTICE),
                            kind="message",
                            school=data.school,
                            guardian=guardian,
                            group_key=event.id,
                            due_at=quiet_until,
                            # The message without its recipient list: one guardian's notice keeps no one else's data.
                            payload=data.model_copy(update={"recipients": ()}).model_dump_json(),
                            now=now,
                        )
                    )
                    result.notices += 1
            else:
                items.append(
                    self._item_row(
                        item_id=stable_id(*_event_key(event), guardian.guardian_id),
                        school=data.school,
                        guardian=guardian,
                        period=mode.value,
                        kind="message",
                        section=message_section(data, data.school),
                        sort_at=data.posted_at,
                        payload=_message_payload(data),
                        now=now,
                    )
                )
        await self._store.add_items(items)
        result.stored_items = len(items)
        return result

    async def on_absence(self, event: AbsenceNoted) -> IntakeResult:
        now = as_utc(self._clock())
        data = event.data
        result = IntakeResult()
        items: list[dict[str, object]] = []
        group_key = f"{data.pupil.pupil_id}:{data.date.isoformat()}"
        for guardian in data.recipients:
            if not guardian.may_receive_routine_notifications:
                channel = absence_notice_channel(guardian)
                result.send_now.append(
                    PlannedNotification(
                        source=SourceEventRef.of_event(event),
                        school=data.school,
                        guardian=guardian,
                        channel=channel,
                        template=ABSENCE_NOTICE,
                        context={},
                    )
                )
                continue
            if not data.reported_by_guardian:
                await self._store.merge_absence(
                    school_id=data.school.id,
                    guardian_id=guardian.guardian_id,
                    group_key=group_key,
                    new_notice=self._notice_row(
                        notice_id=stable_id(*_event_key(event), guardian.guardian_id, ABSENCE_NOTICE),
                        kind="absence",
                        school=data.school,
                        guardian=guardian,
                        group_key=group_key,
                        due_at=now + self._settings.absence_debounce,
                        payload=absence_payload(data),
                        now=now,
                    ),
                    merge=merge_lessons(data),
                )
                result.notices += 1
            mode = self._mode(data.school, guardian)
            if mode in (DeliveryMode.DAILY, DeliveryMode.WEEKLY):
                items.append(
                    self._item_row(
                        item_id=stable_id(*_event_key(event), guardian.guardian_id),
                        school=data.school,
                        guardian=guardian,
                        period=mode.value,
                        kind="absence",
                        section=absence_section(data),
                        sort_at=event.time or now,
                        payload=absence_payload(data),
                        now=now,
                    )
                )
        await self._store.add_items(items)
        result.stored_items = len(items)
        return result

    @staticmethod
    def _item_row(
        *,
        item_id: str,
        school: School,
        guardian: Recipient,
        period: str,
        kind: str,
        section: str,
        sort_at: datetime,
        payload: str,
        now: datetime,
    ) -> dict[str, object]:
        return {
            "item_id": item_id,
            "school_id": school.id,
            "timezone": school.timezone,
            "guardian_id": guardian.guardian_id,
            "period": period,
            "kind": kind,
            "section": section,
            "sort_at": as_utc(sort_at),
            "payload": payload,
            "school": school.model_dump_json(),
            "guardian": guardian.model_dump_json(),
            "created_at": now,
            "digest_id": None,
        }

    @staticmethod
    def _notice_row(
        *,
        notice_id: str,
        kind: str,
        school: School,
        guardian: Recipient,
        group_key: str,
        due_at: datetime,
        payload: str,
        now: datetime,
    ) -> dict[str, object]:
        return {
            "notice_id": notice_id,
            "kind": kind,
            "school_id": school.id,
            "guardian_id": guardian.guardian_id,
            "group_key": group_key,
            "due_at": due_at,
            "state": State.PENDING.value,
            "payload": payload,
            "school": school.model_dump_json(),
            "guardian": guardian.model_dump_json(),
            "claimed_by": None,
            "lease_until": None,
            "updated_at": now,
        }
