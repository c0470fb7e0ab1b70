"""When reminders go out: rules per school and meeting kind, and each school's quiet hours.

Configured as JSON in `REMINDERS_POLICIES` (see docs/operations.md); without it every school gets the default:
an email two days before at the same local time, an SMS two hours before, and quiet hours 21:00–07:00.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from notify_shared.contract import Channel, MeetingKind
from notify_shared.quiet_hours import QuietHours


class ReminderRule(BaseModel):
    """One reminder: on `channel`, `days_before` the meeting at the same local time, then `hours_before` earlier.

    Days count in the school's calendar, so "two days before at the same local time" stays 18:00 across a DST
    change; hours count on the clock, so "two hours before" is always 120 minutes.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: Channel
    days_before: int = Field(default=0, ge=0, le=60)
    hours_before: float = Field(default=0, ge=0, le=72)

    @model_validator(mode="after")
    def _before_the_meeting(self) -> ReminderRule:
        if self.days_before == 0 and self.hours_before == 0:
            raise ValueError("a reminder must come before the meeting: set days_before or hours_before")
        return self

    @property
    def rule_id(self) -> str:
        """Stable name of the rule, part of each reminder's id (e.g. `email-2d`, `sms-2h`)."""
        parts = [self.channel.value]
        if self.days_before:
            parts.append(f"{self.days_before}d")
        if self.hours_before:
            parts.append(f"{self.hours_before:g}h")
        return "-".join(parts)


DEFAULT_RULES = (
    ReminderRule(channel=Channel.EMAIL, days_before=2),
    ReminderRule(channel=Channel.SMS, hours_before=2),
)


class PolicyOverride(BaseModel):
    """Rules and/or quiet hours for one school, one meeting kind, or one kind at one school."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    school_id: str | None = None
    kind: MeetingKind | None = None
    rules: tuple[ReminderRule, ...] | None = None
    quiet_hours: QuietHours | None = None

    def matches(self, school_id: str, kind: MeetingKind) -> bool:
        return self.school_id in (None, school_id) and self.kind in (None, kind)

    @property
    def specificity(self) -> int:
        return (self.school_id is not None) * 2 + (self.kind is not None)


class ReminderPolicies(BaseModel):
    """All reminder policies of a deployment; the most specific matching override wins, field by field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[ReminderRule, ...] = DEFAULT_RULES
    quiet_hours: QuietHours = QuietHours()
    overrides: tuple[PolicyOverride, ...] = ()

    def _matching(self, school_id: str, kind: MeetingKind) -> list[PolicyOverride]:
        found = [override for override in self.overrides if override.matches(school_id, kind)]
        return sorted(found, key=lambda override: override.specificity, reverse=True)

    def rules_for(self, school_id: str, kind: MeetingKind) -> tuple[ReminderRule, ...]:
        for override in self._matching(school_id, kind):
            if override.rules is not None:
                return override.rules
        return self.rules

    def quiet_hours_for(self, school_id: str) -> QuietHours:
        for override in self._matching(school_id, MeetingKind.OTHER):
            if override.quiet_hours is not None and override.kind is None:
                return override.quiet_hours
        return self.quiet_hours
