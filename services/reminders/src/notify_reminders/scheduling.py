"""Turning a meeting event into the set of reminders the schedule should hold.

created / updated: for every eligible guardian who has not declined, one reminder per policy rule on a channel
they want. Rows that no longer belong (the meeting moved, the guardian left or declined, a channel was dropped)
stop being pending; those that match are kept, with the meeting's latest details for rendering. cancelled:
every open reminder of the meeting is cancelled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from notify_reminders.policy import ReminderPolicies, ReminderRule
from notify_reminders.store import (
    OPEN_STATES,
    ReminderState,
    ReminderStore,
    as_utc,
    reminder_id_for,
)
from notify_reminders.timing import Planned, SkipReason, plan_reminder
from notify_shared.contract import MeetingCancelled, MeetingCreated, MeetingUpdated, Recipient, Rsvp, School
from notify_shared.contract.meetings import Meeting

MeetingEvent = MeetingCreated | MeetingUpdated | MeetingCancelled


@dataclass(frozen=True)
class SkippedReminder:
    """A reminder that will not go out, to be reported with a `skipped` status."""

    reminder_id: str
    school: School
    guardian: Recipient
    channel: str
    reason: SkipReason


@dataclass(frozen=True)
class ScheduleChange:
    """What applying one event did."""

    scheduled: int
    skipped: list[SkippedReminder]
    cancelled: int


def reminder_payload(school: School, meeting: Meeting, guardian: Recipient, *, moved: bool) -> str:
    """What the reminder is rendered from when it fires (the meeting as of the latest event)."""
    return json.dumps(
        {
            "school": school.model_dump(mode="json"),
            "meeting": meeting.model_dump(mode="json"),
            "guardian": guardian.model_dump(mode="json"),
            "moved": moved,
        }
    )


class Scheduler:
    """Applies meeting events to the schedule of record."""

    def __init__(self, engine: AsyncEngine, policies: ReminderPolicies, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._policies = policies
        self._clock = clock

    async def apply(self, event: MeetingEvent) -> ScheduleChange:
        now = as_utc(self._clock())
        data = event.data
        meeting = data.meeting
        # Every lookup is by school and meeting: another school's meeting with this id is none of this one's.
        school_id = data.school.id
        async with self._engine.begin() as connection:
            known = await ReminderStore.meeting(connection, school_id, meeting.meeting_id)
            if known is not None and (known.cancelled or _older(event.time, known.last_event_time)):
                return ScheduleChange(0, [], 0)  # a replay or an event overtaken by a newer one
            existing = await ReminderStore.rows_of_meeting(connection, school_id, meeting.meeting_id)
            open_ids = {rid for rid, row in existing.items() if row.state.value in OPEN_STATES}
            await ReminderStore.remember_meeting(
                connection,
                school_id,
                meeting.meeting_id,
                known=known,
                starts_at=meeting.starts_at,
                location=meeting.location,
                event_time=event.time,
                cancelled=isinstance(event, MeetingCancelled),
            )
            if isinstance(event, MeetingCancelled):
                await ReminderStore.set_state(
                    connection, sorted(open_ids), ReminderState.CANCELLED, now=now, reason=SkipReason.MEETING_CANCELLED
                )
                return ScheduleChange(0, [], len(open_ids))

            moved = known is not None and (
                as_utc(meeting.starts_at) != known.first_starts_at or meeting.location != known.first_location
            )
            eligible = [
                guardian
                for guardian in data.recipients
                if guardian.may_receive_routine_notifications and guardian.rsvp is not Rsvp.DECLINED
            ]
            invited = await ReminderStore.invited_at(
                connection, school_id, meeting.meeting_id, [guardian.guardian_id for guardian in eligible], now
            )
            wanted: set[str] = set()
            new_rows: list[dict[str, object]] = []
            skipped: list[SkippedReminder] = []
            for guardian in eligible:
                payload = reminder_payload(data.school, meeting, guardian, moved=moved)
                for rule in self._rules(data.school.id, meeting, guardian):
                    reminder_id = reminder_id_for(
                        school_id, meeting.meeting_id, guardian.guardian_id, rule.rule_id, meeting.starts_at
                    )
                    wanted.add(reminder_id)
                    if reminder_id in existing:
                        await ReminderStore.refresh_payload(connection, reminder_id, payload, now)
                        continue
                    decision = plan_reminder(
                        starts_at=meeting.starts_at,
                        rule=rule,
                        zone=data.school.zone,
                        quiet=self._policies.quiet_hours_for(data.school.id),
                        invited_at=invited[guardian.guardian_id],
                        now=now,
                    )
                    reason = None if isinstance(decision, Planned) else decision.reason
                    new_rows.append(
                        {
                            "reminder_id": reminder_id,
                            "meeting_id": meeting.meeting_id,
                            "school_id": data.school.id,
                            "guardian_id": guardian.guardian_id,
                            "channel": rule.channel.value,
                            "rule_id": rule.rule_id,
                            "starts_at": as_utc(meeting.starts_at),
                            "due_at": as_utc(decision.due_at),
                            "state": (ReminderState.SKIPPED if reason else ReminderState.PENDING).value,
                            "reason": reason.value if reason else None,
                            "payload": payload,
                            "updated_at": now,
                        }
                    )
                    if reason is not None:
                        skipped.append(SkippedReminder(reminder_id, data.school, guardian, rule.channel.value, reason))
            await ReminderStore.insert(connection, new_rows)
            await ReminderStore.set_state(connection, sorted(open_ids - wanted), ReminderState.SUPERSEDED, now=now)
        scheduled = sum(1 for row in new_rows if row["state"] == ReminderState.PENDING.value)
        return ScheduleChange(scheduled, skipped, 0)

    def _rules(self, school_id: str, meeting: Meeting, guardian: Recipient) -> list[ReminderRule]:
        return [rule for rule in self._policies.rules_for(school_id, meeting.kind) if rule.channel in guardian.channels]


def _older(event_time: datetime | None, applied: datetime | None) -> bool:
    return event_time is not None and applied is not None and as_utc(event_time) < applied
