"""Digest slots in the school's time zone: daily at 17:00, weekly on Friday at 14:00, across DST."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from notify_digest.settings import Weekday
from notify_digest.slots import latest_daily_slot, latest_weekly_slot

OSLO = ZoneInfo("Europe/Oslo")


def oslo(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=OSLO)


@pytest.mark.parametrize(
    ("now", "slot"),
    [
        (oslo(2026, 11, 30, 16, 59), oslo(2026, 11, 29, 17)),
        (oslo(2026, 11, 30, 17, 0), oslo(2026, 11, 30, 17)),
        (oslo(2026, 3, 29, 18, 0), oslo(2026, 3, 29, 17)),  # the spring-forward Sunday
        (oslo(2026, 10, 25, 18, 0), oslo(2026, 10, 25, 17)),  # the fall-back Sunday
    ],
)
def test_the_daily_digest_slot_is_17_local(now: datetime, slot: datetime) -> None:
    assert latest_daily_slot(now, time(17, 0), OSLO) == slot


@pytest.mark.parametrize(
    ("now", "slot"),
    [
        (oslo(2026, 12, 4, 13, 59), oslo(2026, 11, 27, 14)),
        (oslo(2026, 12, 4, 14, 0), oslo(2026, 12, 4, 14)),
        (oslo(2026, 12, 7, 9, 0), oslo(2026, 12, 4, 14)),
        (oslo(2026, 10, 30, 14, 0), oslo(2026, 10, 30, 14)),  # the Friday after the fall-back
    ],
)
def test_the_weekly_digest_slot_is_friday_14_local(now: datetime, slot: datetime) -> None:
    assert latest_weekly_slot(now, Weekday.FRIDAY, time(14, 0), OSLO) == slot
