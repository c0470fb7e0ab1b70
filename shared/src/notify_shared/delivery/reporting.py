"""After a notification ends (or waits): the ledger records it, then the status topic and the metrics hear of it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from notify_shared.channels import DeliveryReceipt
from notify_shared.contract import Channel, NotificationStatusReport
from notify_shared.delivery.job import DeliveryJob
from notify_shared.delivery.plan import PlannedNotification, SourceEventRef
from notify_shared.delivery.status_sink import StatusSink
from notify_shared.ledger import DeliveryLedger, DeliveryStatus, QueuedNotification

logger = logging.getLogger(__name__)


class DeliveryMetrics(Protocol):
    """Where the dispatcher reports outcomes for metrics (`notify_shared.observability.ServiceMetrics`)."""

    def notification_recorded(
        self,
        *,
        channel: str,
        template: str,
        language: str | None,
        status: str,
        event_time: datetime | None,
        accepted_at: datetime | None,
    ) -> None:
        """One notification reached a final status; `accepted_at` is set when the provider accepted it."""

    def delivery_retried(self, *, channel: str, template: str) -> None:
        """A send is tried again after a transient provider error."""

    def watch_status_backlog(self, count: Callable[[], Awaitable[int]]) -> None:
        """`count` tells how many status events wait in the backlog; call it when metrics are read."""


class OutcomeReporter:
    """Records outcomes in the ledger and reports them: one `notification.status` event each, and the metrics."""

    def __init__(
        self,
        ledger: DeliveryLedger,
        status_sink: StatusSink,
        *,
        clock: Callable[[], datetime],
        metrics: DeliveryMetrics | None,
    ) -> None:
        self._ledger = ledger
        self._status_sink = status_sink
        self._clock = clock
        self._metrics = metrics

    async def record_and_report(
        self,
        facts: NotificationFacts,
        status: DeliveryStatus,
        reason: str | None,
        *,
        language: str | None,
        receipt: DeliveryReceipt | None = None,
        segments: int | None = None,
        attempts: int = 0,
        detail: str | None = None,
        release_retry: bool = False,
        then_queue: QueuedNotification | None = None,
    ) -> tuple[bool, bool]:
        """Record, then report (status event, metrics); (recorded, `then_queue` created)."""
        recorded, queued = await self._ledger.record_and_queue(
            facts.notification_id,
            status,
            reason=reason,
            detail=detail,
            provider=receipt.provider if receipt else None,
            provider_message_id=receipt.provider_message_id if receipt else None,
            segments=segments,
            language=language,
            release_retry=release_retry,
            only_in_progress=True,
            then_queue=then_queue,
        )
        if not recorded:
            # Our claim passed on to another sender (we were too slow) and it has recorded the outcome.
            logger.warning("notification %s was settled by another sender; keeping its status", facts.notification_id)
            return False, False
        occurred_at = await self.publish(facts, status, reason, language=language, attempts=attempts, segments=segments)
        if self._metrics is not None:
            self._metrics.notification_recorded(
                channel=facts.channel.value,
                template=facts.template,
                language=language,
                status=status.value,
                event_time=facts.source.time,
                # A receipt means the provider accepted it; the send finished just before this clock reading.
                accepted_at=occurred_at if receipt is not None else None,
            )
        return True, queued

    async def publish(
        self,
        facts: NotificationFacts,
        status: DeliveryStatus,
        reason: str | None,
        *,
        language: str | None,
        attempts: int,
        segments: int | None,
    ) -> datetime:
        occurred_at = self._clock()
        await self._status_sink.publish_status(
            NotificationStatusReport(
                notification_id=facts.notification_id,
                source_event_source=facts.source.source,
                source_event_id=facts.source.id,
                source_event_type=facts.source.type,
                school_id=facts.school_id,
                guardian_id=facts.guardian_id,
                channel=facts.channel,
                template=facts.template,
                language=language,
                status=status,
                reason=reason,
                attempt=attempts,
                sms_segments=segments,
                occurred_at=occurred_at,
            )
        )
        return occurred_at


@dataclass(frozen=True)
class NotificationFacts:
    """The ids a status report and the metrics need, whether the notification got as far as a job or not."""

    notification_id: str
    source: SourceEventRef
    school_id: str
    guardian_id: str
    channel: Channel
    template: str


def plan_facts(plan: PlannedNotification, notification_id: str) -> NotificationFacts:
    return NotificationFacts(
        notification_id, plan.source, plan.school.id, plan.guardian.guardian_id, plan.channel, plan.template
    )


def job_facts(job: DeliveryJob) -> NotificationFacts:
    return NotificationFacts(
        job.notification_id, job.source, job.school.id, job.guardian.guardian_id, job.channel, job.template
    )
