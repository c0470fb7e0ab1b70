"""How long a notification stays worth sending, by channel, and what ends it when it is not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from notify_shared.contract import Channel


class ExpiryReason(StrEnum):
    """Why a notification ended as `expired` (the status event's reason)."""

    MEETING_STARTED = "meeting_started"
    DEADLINE_PASSED = "deadline_passed"


@dataclass(frozen=True)
class Deadlines:
    """An SMS that arrives hours late misleads more than it helps; an email is still read the next day.

    The deadline counts from the first try, so a notification held up by a failing provider is dropped once it
    is stale, while an event replayed from the dead-letter topic days later still gets its full window.
    """

    email: timedelta = timedelta(hours=24)
    sms: timedelta = timedelta(hours=1)

    def deadline(self, channel: Channel, *, first_try: datetime, not_after: datetime | None) -> datetime:
        window = self.sms if channel is Channel.SMS else self.email
        deadline = first_try + window
        return deadline if not_after is None else min(deadline, not_after)


def expiry_reason(now: datetime, *, deadline: datetime, not_after: datetime | None) -> ExpiryReason | None:
    """None while the notification may still go out at `now`."""
    if not_after is not None and now >= not_after:
        return ExpiryReason.MEETING_STARTED
    if now >= deadline:
        return ExpiryReason.DEADLINE_PASSED
    return None
