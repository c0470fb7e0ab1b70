"""The digest logic, free of Kafka: take in an event, send what must go now, report what will not go."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from notify_digest.intake import Intake, IntakeResult
from notify_shared.contract import AbsenceNoted, MessagePosted
from notify_shared.delivery import (
    CollectingHandledSink,
    DeliveryOutcome,
    Dispatcher,
    EventReporter,
    HandledSink,
    SourceEventRef,
    describe,
)
from notify_shared.ledger import DeliveryStatus

logger = logging.getLogger(__name__)


class DigestService:
    """Handles one event at a time; safe to call again with the same event."""

    def __init__(
        self,
        *,
        intake: Intake,
        dispatcher: Dispatcher,
        on_schedule_changed: Callable[[], Awaitable[object]],
        handled: HandledSink | None = None,
    ) -> None:
        self._intake = intake
        self._dispatcher = dispatcher
        self._on_schedule_changed = on_schedule_changed
        self._reporter = EventReporter(handled or CollectingHandledSink(), service="digest")

    async def handle(self, event: MessagePosted | AbsenceNoted) -> None:
        if isinstance(event, MessagePosted):
            result = await self._intake.on_message(event)
        else:
            result = await self._intake.on_absence(event)
        outcomes = await self._deliver(result)
        if result.notices:
            await self._on_schedule_changed()
        report = await self._reporter.report(
            SourceEventRef.of_event(event),
            school_id=event.data.school.id,
            outcomes=outcomes,
            scheduled=result.stored_items + result.notices,
            reason=None if outcomes or result.stored_items or result.notices else "no_recipients",
        )
        logger.info("event %s (%s): %s", event.id, event.type, describe(report))

    async def _deliver(self, result: IntakeResult) -> list[DeliveryOutcome]:
        outcomes = await self._dispatcher.dispatch(result.send_now)
        for plan, reason in result.skipped:
            outcomes.append(await self._dispatcher.settle_without_sending(plan, DeliveryStatus.SKIPPED, reason))
        return outcomes
