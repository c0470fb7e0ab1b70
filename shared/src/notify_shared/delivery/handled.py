"""Telling the topics what came of each input event (`event.handled`), in the services' own terms.

A service calls `EventReporter.report` once per event it has handled to the end, with the outcomes of the
notifications it dispatched (if any). Outcomes recorded by an earlier handling of the same event (a redelivery)
are not counted again, so the counts, like the log line built from them, say what this handling really did.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from notify_shared.contract import EventHandledReport, HandlingOutcome
from notify_shared.delivery.outcome import DeliveryOutcome
from notify_shared.delivery.plan import SourceEventRef


class HandledSink(Protocol):
    """Where `event.handled` reports go (Kafka in the services, a list in tests)."""

    async def publish_handled(self, report: EventHandledReport) -> None: ...


class CollectingHandledSink:
    """Keeps reports in memory, for tests."""

    def __init__(self) -> None:
        self.reports: list[EventHandledReport] = []

    async def publish_handled(self, report: EventHandledReport) -> None:
        self.reports.append(report)


def new_notifications(outcomes: Sequence[DeliveryOutcome]) -> dict[str, int]:
    """Outcomes of this handling by status; those an earlier handling recorded are left out."""
    return dict(Counter(outcome.status.value for outcome in outcomes if not outcome.already_recorded))


def describe(report: EventHandledReport) -> str:
    """The report as a log line's tail: `notified (sent 3, queued 1)`, `nothing_to_send: no_time_or_place_change`."""
    counts = ", ".join(f"{status} {count}" for status, count in sorted(report.notifications.items()))
    text = report.outcome.value + (f": {report.reason}" if report.reason else "")
    if counts:
        text += f" ({counts})"
    if report.scheduled:
        text += f", {report.scheduled} kept for later"
    return text


class EventReporter:
    """Builds and publishes `event.handled` for one service."""

    def __init__(
        self, sink: HandledSink, *, service: str, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._sink = sink
        self._service = service
        self._clock = clock

    async def report(
        self,
        source: SourceEventRef,
        *,
        school_id: str,
        outcome: HandlingOutcome | None = None,
        outcomes: Sequence[DeliveryOutcome] = (),
        reason: str | None = None,
        scheduled: int = 0,
    ) -> EventHandledReport:
        """Publish what came of `source` and return it. Without `outcome`, it follows from the rest: `notified`
        when this handling created notifications, `scheduled` when it kept something for later,
        `already_handled` when every notification was recorded before, else `nothing_to_send`."""
        notifications = new_notifications(outcomes)
        if outcome is None:
            if notifications:
                outcome = HandlingOutcome.NOTIFIED
            elif scheduled:
                outcome = HandlingOutcome.SCHEDULED
            elif outcomes:
                outcome = HandlingOutcome.ALREADY_HANDLED
            else:
                outcome = HandlingOutcome.NOTHING_TO_SEND
        report = EventHandledReport(
            source_event_source=source.source,
            source_event_id=source.id,
            source_event_type=source.type,
            school_id=school_id,
            service=self._service,
            outcome=outcome,
            reason=reason,
            notifications=notifications,
            scheduled=scheduled,
            handled_at=self._clock(),
        )
        await self._sink.publish_handled(report)
        return report
