"""Refusing events dated too far ahead: a `time` years in the future would make every later real event of the
same meeting look older, so the services would call them stale and drop them, for good.

Kept free of Kafka so the ingest (HTTP) refuses the same events the services would dead-letter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from notify_shared.contract import CloudEvent, EventRejected

DEFAULT_FUTURE_MARGIN: Final = timedelta(hours=24)
"""As the `EVENT_TIME_FUTURE_MARGIN` setting's default: wide enough for any clock skew between systems."""

TIME_IN_FUTURE = "time_in_future"
"""The dead-letter reason (and the ingest's 400 `reason`) of an event dated beyond the margin."""


def _wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class EventTimeLimit:
    """How far past the receiver's clock an event's CloudEvents `time` may lie."""

    margin: timedelta = DEFAULT_FUTURE_MARGIN
    clock: Callable[[], datetime] = field(default=_wall_clock)

    def check(self, event: CloudEvent) -> None:
        """Raise `EventRejected` (`time_in_future`) when `event.time` lies more than `margin` ahead."""
        if event.time is None:
            return
        now = self.clock()
        latest = now + self.margin
        if event.time > latest:
            raise EventRejected(
                TIME_IN_FUTURE,
                [
                    f"time: {event.time.isoformat()} lies more than {_hours(self.margin)} after the receiver's clock "
                    f"({now.astimezone(UTC).isoformat()}); the latest accepted is {latest.astimezone(UTC).isoformat()}"
                ],
                event.id,
            )


def _hours(margin: timedelta) -> str:
    hours = margin.total_seconds() / 3600
    return f"{hours:g} hours"
