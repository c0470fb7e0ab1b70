"""When one reminder is due, computed in the school's time zone. Pure functions: no clock, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from notify_reminders.policy import ReminderRule
from notify_shared.quiet_hours import QuietHours

MINIMUM_GAP_AFTER_INVITATION = timedelta(hours=1)


class SkipReason(StrEnum):
    """Why a reminder is not sent; the `reason` of its `skipped` status."""

    DUE_BEFORE_ARRIVAL = "due_before_event_arrived"
    TOO_CLOSE_TO_INVITATION = "within_an_hour_of_invitation"
    AFTER_MEETING_START = "after_meeting_start"
    MEETING_STARTED = "meeting_started"
    LATE_BEYOND_GRACE = "late_beyond_grace_period"
    QUIET_HOURS = "quiet_hours"
    MEETING_CANCELLED = "meeting_cancelled"
    DECLINED = "guardian_declined"
    NOT_ELIGIBLE = "not_eligible"


def _local_to_utc(naive_local: datetime, zone: ZoneInfo) -> datetime:
    # A wall-clock time that does not exist (the hour skipped in spring) resolves to the same instant as
    # the time an hour later; one that exists twice (autumn) takes the first. Round-tripping through UTC
    # gives every instant exactly one form.
    return naive_local.replace(tzinfo=zone).astimezone(UTC)


def planned_instant(starts_at: datetime, rule: ReminderRule, zone: ZoneInfo) -> datetime:
    """The rule's instant before the meeting, in UTC, before quiet hours are applied."""
    local_start = starts_at.astimezone(zone).replace(tzinfo=None)
    same_local_time = _local_to_utc(local_start - timedelta(days=rule.days_before), zone)
    return same_local_time - timedelta(hours=rule.hours_before)


def out_of_quiet_hours(instant: datetime, quiet: QuietHours, zone: ZoneInfo) -> datetime:
    """Move an instant that falls in quiet hours to the last allowed minute before them."""
    local = instant.astimezone(zone)
    if not quiet.contains(local.time()):
        return instant
    last_allowed = (datetime.combine(local.date(), quiet.start) - timedelta(minutes=1)).time()
    day = local.date()
    if quiet.start > quiet.end and local.time() < quiet.end:
        day -= timedelta(days=1)  # after midnight: the quiet period began the evening before
    return _local_to_utc(datetime.combine(day, last_allowed), zone)


@dataclass(frozen=True)
class Planned:
    """A reminder to send at `due_at` (UTC)."""

    due_at: datetime


@dataclass(frozen=True)
class Skipped:
    """A reminder not to send, and why; `due_at` is when it would have been."""

    due_at: datetime
    reason: SkipReason


def plan_reminder(
    *,
    starts_at: datetime,
    rule: ReminderRule,
    zone: ZoneInfo,
    quiet: QuietHours,
    invited_at: datetime,
    now: datetime,
) -> Planned | Skipped:
    """Decide when (or whether) one reminder goes out, as the event about the meeting arrives at `now`."""
    due = out_of_quiet_hours(planned_instant(starts_at, rule, zone), quiet, zone)
    if due >= starts_at:
        return Skipped(due, SkipReason.AFTER_MEETING_START)
    if due <= now:
        return Skipped(due, SkipReason.DUE_BEFORE_ARRIVAL)
    if due < invited_at + MINIMUM_GAP_AFTER_INVITATION:
        return Skipped(due, SkipReason.TOO_CLOSE_TO_INVITATION)
    return Planned(due)


def reason_not_to_fire(
    *, due_at: datetime, starts_at: datetime, now: datetime, grace: timedelta, quiet: QuietHours, zone: ZoneInfo
) -> SkipReason | None:
    """At firing time: None to send now, or why a reminder that is due must not go out any more."""
    if now >= starts_at:
        return SkipReason.MEETING_STARTED
    if now - due_at > grace:
        return SkipReason.LATE_BEYOND_GRACE
    if now > due_at and quiet.contains(now.astimezone(zone).time()):
        # Late after downtime and now inside quiet hours: a reminder never arrives at night.
        return SkipReason.QUIET_HOURS
    return None
