"""The invitations logic, free of Kafka: decide what a meeting event means, plan, and hand over for delivery."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from notify_invitations.meeting_states import DecisionKind, MeetingDecision, MeetingEvent, MeetingStateStore
from notify_invitations.planning import AnswerUrl, PlanningContext, plan_notifications
from notify_shared.answer_links import AnswerLinkKeys
from notify_shared.answer_links import answer_url as notify_answer_url
from notify_shared.contract import HandlingOutcome, Recipient
from notify_shared.delivery import (
    CollectingHandledSink,
    DeliveryOutcome,
    Dispatcher,
    EventReporter,
    HandledSink,
    SourceEventRef,
    describe,
)
from notify_shared.quiet_hours import QuietHours

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
        quiet_hours: QuietHours | None = None,
        handled: HandledSink | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        answer_url: AnswerUrl | None = None,
    ) -> None:
        self._states = states
        self._dispatcher = dispatcher
        self._organizer_email = organizer_email
        self._quiet_hours = quiet_hours
        self._reporter = EventReporter(handled or CollectingHandledSink(), service="invitations", clock=clock)
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
                now=self._clock(),
                quiet_hours=self._quiet_hours,
                answer_url=self._answer_url,
            ),
        )
        outcomes = await self._dispatcher.dispatch(plans)
        report = await self._reporter.report(
            SourceEventRef.of_event(event),
            school_id=event.data.school.id,
            outcome=HandlingOutcome.STALE if decision.kind is DecisionKind.STALE else None,
            reason=_why_nothing(decision) if not plans else None,
            outcomes=outcomes,
        )
        logger.info(
            "event %s (%s, meeting %s): %s → %s",
            event.id,
            event.type,
            event.data.meeting.meeting_id,
            decision.kind.value,
            describe(report),
        )
        return outcomes


def _why_nothing(decision: MeetingDecision) -> str:
    """Why a meeting event planned no notification, in the words of `event.handled`'s `reason`."""
    if decision.kind is DecisionKind.STALE:
        return "older_than_applied"
    if decision.kind is DecisionKind.UPDATE and not decision.changes and not decision.newly_invited:
        return "no_time_or_place_change"
    return "no_recipients"
