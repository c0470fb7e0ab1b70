"""When digests go out: the latest daily or weekly slot at or before a moment, in the school's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from notify_digest.settings import Weekday


def _at(day: date, moment: time, zone: ZoneInfo) -> datetime:
    # Round-trip through UTC so a wall time in a DST gap still names one instant.
    return datetime.combine(day, moment).replace(tzinfo=zone).astimezone(UTC)


def latest_daily_slot(now: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The most recent `at` (local) that is not after `now`."""
    local_day = now.astimezone(zone).date()
    slot = _at(local_day, at, zone)
    return slot if slot <= now else _at(local_day - timedelta(days=1), at, zone)


def latest_weekly_slot(now: datetime, weekday: Weekday, at: time, zone: ZoneInfo) -> datetime:
    """The most recent `weekday` at `at` (local) that is not after `now`."""
    local_day = now.astimezone(zone).date()
    back = (local_day.weekday() - weekday) % 7
    slot = _at(local_day - timedelta(days=back), at, zone)
    return slot if slot <= now else _at(local_day - timedelta(days=back + 7), at, zone)
