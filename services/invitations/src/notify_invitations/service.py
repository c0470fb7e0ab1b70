"""The invitations logic, free of Kafka: decide what a meeting event means, plan, and hand over for delivery."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from notify_invitations.meeting_states import MeetingEvent, MeetingStateStore
from notify_invitations.planning import AnswerUrl, PlanningContext, plan_notifications
from notify_shared.answer_links import AnswerLinkKeys
from notify_shared.answer_links import answer_url as notify_answer_url
from notify_shared.contract import Recipient
from notify_shared.delivery import DeliveryOutcome, Dispatcher

logger = logging.getLogger(__name__)


def answer_links(keys: AnswerLinkKeys, public_base_url: str) -> AnswerUrl:
    """Each guardian's link to the responses service's answer page, expiring when the meeting starts."""

    def answer_url(event: MeetingEvent, guardian: Recipient) -> str:
        data = event.data
        token = keys.sign(
            school_id=data.school.id,
            meeting_id=data.meeting.meeting_id,
            guardian_id=guardian.guardian_id,
            expires_at=data.meeting.starts_at,
        )
        return notify_answer_url(public_base_url, token)

    return answer_url


class InvitationService:
    """Handles one meeting event at a time; safe to call again with the same event."""

    def __init__(
        self,
        *,
        states: MeetingStateStore,
        dispatcher: Dispatcher,
        organizer_email: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        answer_url: AnswerUrl | None = None,
    ) -> None:
        self._states = states
        self._dispatcher = dispatcher
        self._organizer_email = organizer_email
        self._clock = clock
        self._answer_url = answer_url

    async def handle(self, event: MeetingEvent) -> list[DeliveryOutcome]:
        decision = await self._states.decide(event)
        plans = plan_notifications(
            event,
            decision,
            PlanningContext(
                organizer_email=self._organizer_email,
                stamp=event.time or self._clock(),
                answer_url=self._answer_url,
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
