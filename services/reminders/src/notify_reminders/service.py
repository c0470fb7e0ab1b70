"""The reminders logic, free of Kafka: apply meeting events to the schedule, report what will not be sent."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from notify_reminders.firing import SOURCE_TYPE, TEMPLATE
from notify_reminders.scheduling import MeetingEvent, Scheduler, SkippedReminder
from notify_shared.contract import Channel
from notify_shared.delivery import Dispatcher, PlannedNotification, SourceEventRef
from notify_shared.ledger import DeliveryStatus

logger = logging.getLogger(__name__)


class ReminderService:
    """Handles one meeting event at a time; safe to call again with the same event."""

    def __init__(
        self, *, scheduler: Scheduler, dispatcher: Dispatcher, on_schedule_changed: Callable[[], Awaitable[object]]
    ) -> None:
        self._scheduler = scheduler
        self._dispatcher = dispatcher
        self._on_schedule_changed = on_schedule_changed

    async def handle(self, event: MeetingEvent) -> None:
        change = await self._scheduler.apply(event)
        for skipped in change.skipped:
            await self._report_skipped(skipped)
        await self._on_schedule_changed()
        logger.info(
            "event %s (%s, meeting %s): %d reminders scheduled, %d skipped, %d cancelled",
            event.id,
            event.type,
            event.data.meeting.meeting_id,
            change.scheduled,
            len(change.skipped),
            change.cancelled,
        )

    async def _report_skipped(self, skipped: SkippedReminder) -> None:
        plan = PlannedNotification(
            source=SourceEventRef(id=skipped.reminder_id, type=SOURCE_TYPE),
            school=skipped.school,
            guardian=skipped.guardian,
            channel=Channel(skipped.channel),
            template=TEMPLATE,
            context={},
        )
        await self._dispatcher.settle_without_sending(plan, DeliveryStatus.SKIPPED, skipped.reason.value)
