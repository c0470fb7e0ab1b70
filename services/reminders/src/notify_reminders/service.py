"""The reminders logic, free of Kafka: apply meeting events to the schedule, report what will not be sent."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from notify_reminders.firing import SOURCE, SOURCE_TYPE, TEMPLATE
from notify_reminders.scheduling import MeetingEvent, Scheduler, SkippedReminder
from notify_shared.contract import Channel, HandlingOutcome
from notify_shared.delivery import (
    CollectingHandledSink,
    DeliveryOutcome,
    Dispatcher,
    EventReporter,
    HandledSink,
    PlannedNotification,
    SourceEventRef,
    describe,
)
from notify_shared.ledger import DeliveryStatus

logger = logging.getLogger(__name__)


class ReminderService:
    """Handles one meeting event at a time; safe to call again with the same event."""

    def __init__(
        self,
        *,
        scheduler: Scheduler,
        dispatcher: Dispatcher,
        on_schedule_changed: Callable[[], Awaitable[object]],
        handled: HandledSink | None = None,
    ) -> None:
        self._scheduler = scheduler
        self._dispatcher = dispatcher
        self._on_schedule_changed = on_schedule_changed
        self._reporter = EventReporter(handled or CollectingHandledSink(), service="reminders")

    async def handle(self, event: MeetingEvent) -> None:
        change = await self._scheduler.apply(event)
        skipped = [await self._report_skipped(reminder) for reminder in change.skipped]
        await self._on_schedule_changed()
        # Skipped reminders are reported one by one as `skipped` statuses; the event's outcome is what it did
        # to the schedule.
        if change.scheduled:
            outcome, reason = HandlingOutcome.SCHEDULED, None
        elif change.cancelled:
            outcome, reason = HandlingOutcome.NOTHING_TO_SEND, "reminders_cancelled"
        else:
            outcome, reason = HandlingOutcome.NOTHING_TO_SEND, "no_reminder_due" if skipped else "nothing_new"
        report = await self._reporter.report(
            SourceEventRef.of_event(event),
            school_id=event.data.school.id,
            outcome=outcome,
            reason=reason,
            outcomes=skipped,
            scheduled=change.scheduled,
        )
        logger.info(
            "event %s (%s, meeting %s): %s, %d cancelled",
            event.id,
            event.type,
            event.data.meeting.meeting_id,
            describe(report),
            change.cancelled,
        )

    async def _report_skipped(self, skipped: SkippedReminder) -> DeliveryOutcome:
        plan = PlannedNotification(
            source=SourceEventRef(source=SOURCE, id=skipped.reminder_id, type=SOURCE_TYPE),
            school=skipped.school,
            guardian=skipped.guardian,
            channel=Channel(skipped.channel),
            template=TEMPLATE,
            context={},
        )
        return await self._dispatcher.settle_without_sending(plan, DeliveryStatus.SKIPPED, skipped.reason.value)
