"""The digest logic, free of Kafka: take in an event, send what must go now, report what will not go."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from notify_digest.intake import Intake, IntakeResult
from notify_shared.contract import AbsenceNoted, MessagePosted
from notify_shared.delivery import Dispatcher
from notify_shared.ledger import DeliveryStatus

logger = logging.getLogger(__name__)


class DigestService:
    """Handles one event at a time; safe to call again with the same event."""

    def __init__(
        self, *, intake: Intake, dispatcher: Dispatcher, on_schedule_changed: Callable[[], Awaitable[object]]
    ) -> None:
        self._intake = intake
        self._dispatcher = dispatcher
        self._on_schedule_changed = on_schedule_changed

    async def handle(self, event: MessagePosted | AbsenceNoted) -> None:
        if isinstance(event, MessagePosted):
            result = await self._intake.on_message(event)
        else:
            result = await self._intake.on_absence(event)
        await self._deliver(result)
        if result.notices:
            await self._on_schedule_changed()
        logger.info(
            "event %s (%s): %d sent now, %d skipped, %d digest items, %d notices",
            event.id,
            event.type,
            len(result.send_now),
            len(result.skipped),
            result.stored_items,
            result.notices,
        )

    async def _deliver(self, result: IntakeResult) -> None:
        await self._dispatcher.dispatch(result.send_now)
        for plan, reason in result.skipped:
            await self._dispatcher.settle_without_sending(plan, DeliveryStatus.SKIPPED, reason)
