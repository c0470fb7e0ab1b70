"""Reminder policies: defaults, and the most specific override winning."""

from __future__ import annotations

from datetime import time

import pytest
from pydantic import ValidationError

from notify_reminders.policy import DEFAULT_RULES, PolicyOverride, ReminderPolicies, ReminderRule
from notify_reminders.settings import RemindersSettings
from notify_shared.contract import Channel, MeetingKind
from notify_shared.quiet_hours import QuietHours
from notify_shared.settings import load_settings

WEEK_BEFORE = (ReminderRule(channel=Channel.EMAIL, days_before=7),)
DAY_BEFORE = (ReminderRule(channel=Channel.SMS, days_before=1),)
LATE_EVENINGS = QuietHours(start=time(22, 0), end=time(6, 30))

POLICIES = ReminderPolicies(
    overrides=(
        PolicyOverride(kind=MeetingKind.DEVELOPMENT_TALK, rules=WEEK_BEFORE),
        PolicyOverride(school_id="nor-0301-bjolsen", quiet_hours=LATE_EVENINGS),
        PolicyOverride(school_id="nor-0301-bjolsen", kind=MeetingKind.DEVELOPMENT_TALK, rules=DAY_BEFORE),
    )
)


def test_without_configuration_every_school_gets_email_two_days_and_sms_two_hours_before() -> None:
    policies = ReminderPolicies()
    assert policies.rules_for("any-school", MeetingKind.PARENT_MEETING) == DEFAULT_RULES
    assert [rule.rule_id for rule in DEFAULT_RULES] == ["email-2d", "sms-2h"]
    assert policies.quiet_hours_for("any-school") == QuietHours(start=time(21, 0), end=time(7, 0))


@pytest.mark.parametrize(
    ("school", "kind", "rules"),
    [
        ("other-school", MeetingKind.PARENT_MEETING, DEFAULT_RULES),
        ("other-school", MeetingKind.DEVELOPMENT_TALK, WEEK_BEFORE),
        ("nor-0301-bjolsen", MeetingKind.PARENT_MEETING, DEFAULT_RULES),
        ("nor-0301-bjolsen", MeetingKind.DEVELOPMENT_TALK, DAY_BEFORE),
    ],
)
def test_the_most_specific_override_decides_the_rules(
    school: str, kind: MeetingKind, rules: tuple[ReminderRule, ...]
) -> None:
    assert POLICIES.rules_for(school, kind) == rules


def test_quiet_hours_are_set_per_school() -> None:
    assert POLICIES.quiet_hours_for("nor-0301-bjolsen") == LATE_EVENINGS
    assert POLICIES.quiet_hours_for("other-school") == QuietHours()


def test_a_rule_must_come_before_the_meeting() -> None:
    with pytest.raises(ValidationError, match="must come before the meeting"):
        ReminderRule(channel=Channel.SMS)


@pytest.mark.parametrize(
    ("quiet", "inside", "outside"),
    [
        (QuietHours(), [time(21, 0), time(23, 59), time(0, 0), time(6, 59)], [time(7, 0), time(12, 0), time(20, 59)]),
        (QuietHours(start=time(12, 0), end=time(13, 0)), [time(12, 0), time(12, 59)], [time(11, 59), time(13, 0)]),
    ],
)
def test_quiet_hours_overnight_and_within_a_day(quiet: QuietHours, inside: list[time], outside: list[time]) -> None:
    assert all(quiet.contains(moment) for moment in inside)
    assert not any(quiet.contains(moment) for moment in outside)


def test_a_policy_setting_that_is_not_json_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REMINDERS_POLICIES", "{not json")
    with pytest.raises(SystemExit) as stopped:
        load_settings(RemindersSettings)
    assert stopped.value.code == 2
    assert "REMINDERS_POLICIES: not valid JSON" in capsys.readouterr().err
