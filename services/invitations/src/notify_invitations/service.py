"""The invitations logic, free of Kafka: decide what a meeting event means, plan, and hand over for delivery."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from notify_invitations.meeting_states import MeetingEvent, MeetingStateStore
from notify_invitations.planning import PlanningContext, plan_notifications
from notify_shared.delivery import DeliveryOutcome, Dispatcher
from notify_shared.quiet_hours import QuietHours

logger = logging.getLogger(__name__)


class InvitationService:
    """Handles one meeting event at a time; safe to call again with the same event."""

    def __init__(
        self,
        *,
        states: MeetingStateStore,
        dispatcher: Dispatcher,
        organizer_email: str,
        quiet_hours: QuietHours | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._states = states
        self._dispatcher = dispatcher
        self._organizer_email = organizer_email
        self._quiet_hours = quiet_hours
        self._clock = clock

    async def handle(self, event: MeetingEvent) -> list[DeliveryOutcome]:
        decision = await self._states.decide(event)
        plans = plan_notifications(
            event,
            decision,
            PlanningContext(
                organizer_email=self._organizer_email,
                stamp=event.time or self._clock(),
                now=self._clock(),
                quiet_hours=self._quiet_hours,
            ),
        )
        outcomes = await self._dispatcher.dispatch(plans)
        logger.info(
            "event %s (%s, meeting %s): %s, %d notifications",
            event.id,
            event.type,
            event.data.meeting.meeting_id,
            decision.kind.value,
            len(outcomes),
        )
        return outcomes
