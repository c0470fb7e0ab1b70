"""When reminders fall: the school's calendar, quiet hours, and the Europe/Oslo DST transitions of 2026."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from notify_reminders.policy import DEFAULT_RULES, ReminderRule
from notify_reminders.timing import Planned, Skipped, SkipReason, plan_reminder, reason_not_to_fire
from notify_shared.quiet_hours import QuietHours

OSLO = ZoneInfo("Europe/Oslo")
EMAIL_TWO_DAYS, SMS_TWO_HOURS = DEFAULT_RULES
QUIET = QuietHours()
LONG_AGO = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _due(starts_at: datetime, rule: ReminderRule) -> datetime:
    planned = plan_reminder(starts_at=starts_at, rule=rule, zone=OSLO, quiet=QUIET, invited_at=LONG_AGO, now=LONG_AGO)
    assert isinstance(planned, Planned), planned
    return planned.due_at.astimezone(OSLO)


def oslo(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=OSLO)


def test_the_email_comes_two_days_before_at_the_same_local_time_and_the_sms_two_hours_before() -> None:
    meeting = oslo(2026, 12, 3, 18, 0)
    assert _due(meeting, EMAIL_TWO_DAYS) == oslo(2026, 12, 1, 18, 0)
    assert _due(meeting, SMS_TWO_HOURS) == oslo(2026, 12, 3, 16, 0)


@pytest.mark.parametrize(
    ("meeting", "email_due", "hours_between"),
    [
        # Spring forward on Sunday 29 March 2026: 02:00 CET becomes 03:00 CEST.
        (oslo(2026, 3, 30, 18, 0), oslo(2026, 3, 28, 18, 0), 47),
        (oslo(2026, 3, 31, 18, 0), oslo(2026, 3, 29, 18, 0), 48),
        (oslo(2026, 3, 29, 18, 0), oslo(2026, 3, 27, 18, 0), 47),
        # Fall back on Sunday 25 October 2026: 03:00 CEST becomes 02:00 CET.
        (oslo(2026, 10, 26, 18, 0), oslo(2026, 10, 24, 18, 0), 49),
        (oslo(2026, 10, 25, 18, 0), oslo(2026, 10, 23, 18, 0), 49),
        (oslo(2026, 10, 27, 18, 0), oslo(2026, 10, 25, 18, 0), 48),
    ],
)
def test_two_days_before_keeps_the_wall_clock_time_across_dst(
    meeting: datetime, email_due: datetime, hours_between: int
) -> None:
    due = _due(meeting, EMAIL_TWO_DAYS)
    assert due == email_due
    assert due.time() == time(18, 0)
    # Aware datetimes in one zone subtract as wall-clock times; the real gap needs UTC.
    assert meeting.astimezone(UTC) - due.astimezone(UTC) == timedelta(hours=hours_between)


@pytest.mark.parametrize(
    ("meeting", "sms_due"),
    [
        # On the spring-forward morning the clock skips 02:00–03:00: 10:00 CEST minus two real hours is 08:00.
        (oslo(2026, 3, 29, 10, 0), oslo(2026, 3, 29, 8, 0)),
        # On the fall-back morning 02:00–03:00 happens twice: still exactly two hours.
        (oslo(2026, 10, 25, 10, 0), oslo(2026, 10, 25, 8, 0)),
    ],
)
def test_two_hours_before_is_two_real_hours_on_dst_days(meeting: datetime, sms_due: datetime) -> None:
    due = _due(meeting, SMS_TWO_HOURS)
    assert due == sms_due
    assert meeting.astimezone(UTC) - due.astimezone(UTC) == timedelta(hours=2)


@pytest.mark.parametrize(
    ("meeting", "sms_due"),
    [
        # 06:00 would be inside 21:00–07:00: the last allowed minute before is 20:59 the evening before.
        (oslo(2026, 12, 3, 8, 0), oslo(2026, 12, 2, 20, 59)),
        # 21:30 is inside: 20:59 the same evening.
        (oslo(2026, 12, 3, 23, 30), oslo(2026, 12, 3, 20, 59)),
        # 07:00 is the first allowed minute again.
        (oslo(2026, 12, 3, 9, 0), oslo(2026, 12, 3, 7, 0)),
        # The evening before the spring-forward night is still CET.
        (oslo(2026, 3, 29, 8, 0), oslo(2026, 3, 28, 20, 59)),
        # The evening before the fall-back night is still CEST.
        (oslo(2026, 10, 25, 8, 0), oslo(2026, 10, 24, 20, 59)),
    ],
)
def test_a_reminder_that_would_fall_in_quiet_hours_moves_to_the_last_minute_before_them(
    meeting: datetime, sms_due: datetime
) -> None:
    assert _due(meeting, SMS_TWO_HOURS) == sms_due


def test_quiet_hours_are_per_school() -> None:
    late_school = QuietHours(start=time(22, 0), end=time(6, 30))
    planned = plan_reminder(
        starts_at=oslo(2026, 12, 3, 23, 30),
        rule=SMS_TWO_HOURS,
        zone=OSLO,
        quiet=late_school,
        invited_at=LONG_AGO,
        now=LONG_AGO,
    )
    assert planned == Planned(oslo(2026, 12, 3, 21, 30).astimezone(UTC))


def test_a_reminder_already_due_when_the_event_arrives_is_skipped() -> None:
    meeting = oslo(2026, 12, 3, 18, 0)
    now = oslo(2026, 12, 2, 9, 0)  # the email was due yesterday
    decision = plan_reminder(starts_at=meeting, rule=EMAIL_TWO_DAYS, zone=OSLO, quiet=QUIET, invited_at=now, now=now)
    assert isinstance(decision, Skipped)
    assert decision.reason is SkipReason.DUE_BEFORE_ARRIVAL


def test_a_reminder_within_an_hour_after_the_invitation_is_skipped() -> None:
    meeting = oslo(2026, 12, 3, 18, 0)
    invited = oslo(2026, 12, 3, 15, 30)  # the SMS would come 30 minutes after the invitation
    decision = plan_reminder(
        starts_at=meeting, rule=SMS_TWO_HOURS, zone=OSLO, quiet=QUIET, invited_at=invited, now=invited
    )
    assert decision == Skipped(oslo(2026, 12, 3, 16, 0).astimezone(UTC), SkipReason.TOO_CLOSE_TO_INVITATION)


def test_a_reminder_pushed_past_the_meeting_start_by_quiet_hours_is_skipped() -> None:
    # A meeting at 21:30 with a rule of 10 minutes before: 21:20 moves back to 20:59, fine; but a meeting at
    # 06:30 with a two-hour SMS moves to 20:59 the evening before — still before the meeting, so it is kept.
    decision = plan_reminder(
        starts_at=oslo(2026, 12, 3, 6, 30),
        rule=SMS_TWO_HOURS,
        zone=OSLO,
        quiet=QUIET,
        invited_at=LONG_AGO,
        now=LONG_AGO,
    )
    assert decision == Planned(oslo(2026, 12, 2, 20, 59).astimezone(UTC))


GRACE = timedelta(minutes=30)


@pytest.mark.parametrize(
    ("now", "reason"),
    [
        (oslo(2026, 12, 3, 16, 0), None),
        (oslo(2026, 12, 3, 16, 29), None),
        (oslo(2026, 12, 3, 16, 31), SkipReason.LATE_BEYOND_GRACE),
        (oslo(2026, 12, 3, 18, 0), SkipReason.MEETING_STARTED),
    ],
)
def test_after_downtime_a_reminder_late_within_the_grace_period_still_goes_out(
    now: datetime, reason: SkipReason | None
) -> None:
    assert (
        reason_not_to_fire(
            due_at=oslo(2026, 12, 3, 16, 0),
            starts_at=oslo(2026, 12, 3, 18, 0),
            now=now,
            grace=GRACE,
            quiet=QUIET,
            zone=OSLO,
        )
        is reason
    )


def test_a_late_reminder_never_goes_out_in_quiet_hours() -> None:
    reason = reason_not_to_fire(
        due_at=oslo(2026, 12, 3, 20, 59),
        starts_at=oslo(2026, 12, 4, 8, 0),
        now=oslo(2026, 12, 3, 21, 5),
        grace=GRACE,
        quiet=QUIET,
        zone=OSLO,
    )
    assert reason is SkipReason.QUIET_HOURS
