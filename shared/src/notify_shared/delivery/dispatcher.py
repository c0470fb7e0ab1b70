"""The delivery core: claim in the ledger, check eligibility, render, send with retries, record, report.

Every service hands its planned notifications to a `Dispatcher`. The ledger claim comes first, so an event that
Kafka redelivers (after a crash or a rebalance) finds its notifications already recorded and sends nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from notify_shared.channels import (
    DeliveryReceipt,
    EmailChannel,
    OutgoingEmail,
    OutgoingSms,
    PermanentDeliveryError,
    SmsChannel,
    TransientDeliveryError,
)
from notify_shared.concurrency import finish_all
from notify_shared.contract import Channel, NotificationStatusReport
from notify_shared.delivery.eligibility import screen
from notify_shared.delivery.plan import PlannedNotification
from notify_shared.delivery.retry import Backoff, Sleep
from notify_shared.delivery.status_sink import StatusSink
from notify_shared.ledger import DeliveryKey, DeliveryLedger, DeliveryStatus
from notify_shared.rendering import RenderedNotification

logger = logging.getLogger(__name__)

Render = Callable[[str, str, str, Mapping[str, object]], RenderedNotification]
"""(template, wanted language, school's written standard, context) → the rendered notification."""


class NotificationInFlightError(RuntimeError):
    """Another sender holds a live claim on a notification of this event (or we did, before a crash).

    The event must be handled again later rather than acknowledged: once the claim's lease runs out, the
    notification is claimed again and sent, so it is never lost.
    """

    def __init__(self, notification_id: str) -> None:
        super().__init__(f"notification {notification_id} is claimed by another sender; retry after its lease")
        self.notification_id = notification_id


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


@dataclass(frozen=True)
class DeliveryOutcome:
    """What became of one planned notification in this run."""

    notification_id: str
    status: DeliveryStatus
    reason: str | None = None
    already_recorded: bool = False


@dataclass(frozen=True)
class _Attempted:
    status: DeliveryStatus
    reason: str | None
    receipt: DeliveryReceipt | None
    attempts: int


class Dispatcher:
    """Sends planned notifications exactly once per ledger key, with bounded concurrency."""

    def __init__(
        self,
        *,
        ledger: DeliveryLedger,
        render: Render,
        email: EmailChannel,
        sms: SmsChannel,
        status_sink: StatusSink,
        email_sender: str,
        max_attempts: int = 3,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        concurrency: int = 16,
        metrics: DeliveryMetrics | None = None,
    ) -> None:
        self._ledger = ledger
        self._metrics = metrics
        self._render = render
        self._email = email
        self._sms = sms
        self._status_sink = status_sink
        self._email_sender = email_sender
        self._max_attempts = max_attempts
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)

    async def dispatch(self, plans: Sequence[PlannedNotification]) -> list[DeliveryOutcome]:
        """Deliver every plan; returns one outcome per plan, in order.

        Raises (so the event is read again) on ledger or Kafka failure, and with `NotificationInFlightError`
        when a claim is held by a sender that may have crashed; every other plan has been delivered by then.
        """

        async def bounded(plan: PlannedNotification) -> DeliveryOutcome:
            async with self._slots:
                return await self.deliver(plan)

        return await finish_all(bounded(plan) for plan in plans)

    async def deliver(self, plan: PlannedNotification) -> DeliveryOutcome:
        claim = await self._ledger.begin(
            self._key(plan),
            source_event_type=plan.source.type,
            school_id=plan.school.id,
            language=plan.guardian.language,
        )
        if claim.in_flight:
            raise NotificationInFlightError(claim.notification_id)
        if not claim.should_send:
            logger.info(
                "notification %s already recorded as %s; not sending again",
                claim.notification_id,
                claim.previous_status,
            )
            assert claim.previous_status is not None  # not new, not in flight: a final status
            return DeliveryOutcome(claim.notification_id, claim.previous_status, already_recorded=True)

        verdict = screen(plan.guardian, plan.channel)
        if verdict is not None:
            await self._finish(plan, claim.notification_id, verdict.status, verdict.reason, language=None)
            return DeliveryOutcome(claim.notification_id, verdict.status, verdict.reason)

        try:
            rendered = self._render(plan.template, plan.guardian.language, plan.school.written_standard, plan.context)
        except Exception:
            # A template bug must fail this one notification visibly, not block the partition.
            logger.exception("rendering %s failed for notification %s", plan.template, claim.notification_id)
            await self._finish(plan, claim.notification_id, DeliveryStatus.FAILED, "template_error", language=None)
            return DeliveryOutcome(claim.notification_id, DeliveryStatus.FAILED, "template_error")

        attempted = await self._send_with_retries(plan, rendered, claim.notification_id)
        recording = asyncio.ensure_future(
            self._finish(
                plan,
                claim.notification_id,
                attempted.status,
                attempted.reason,
                language=rendered.language,
                receipt=attempted.receipt,
                segments=rendered.sms_segments if plan.channel is Channel.SMS else None,
                attempts=attempted.attempts,
            )
        )
        try:
            await asyncio.shield(recording)
        except asyncio.CancelledError:
            # Cancelled (a shutdown) after the provider accepted: record that first, or a restart would send
            # the same notification again.
            await recording
            raise
        return DeliveryOutcome(claim.notification_id, attempted.status, attempted.reason)

    async def settle_without_sending(
        self, plan: PlannedNotification, status: DeliveryStatus, reason: str
    ) -> DeliveryOutcome:
        """Record and report a notification that ends without being sent (e.g. a reminder skipped as too late).

        Claimed like any other, so a redelivered decision does not report twice.
        """
        claim = await self._ledger.begin(
            self._key(plan), source_event_type=plan.source.type, school_id=plan.school.id, language=None
        )
        if not claim.should_send:
            assert claim.previous_status is not None
            return DeliveryOutcome(claim.notification_id, claim.previous_status, already_recorded=True)
        await self._finish(plan, claim.notification_id, status, reason, language=None)
        return DeliveryOutcome(claim.notification_id, status, reason)

    @staticmethod
    def _key(plan: PlannedNotification) -> DeliveryKey:
        return DeliveryKey(
            source_event_id=plan.source.id,
            guardian_id=plan.guardian.guardian_id,
            channel=plan.channel.value,
            template=plan.template,
        )

    async def _send_with_retries(
        self, plan: PlannedNotification, rendered: RenderedNotification, notification_id: str
    ) -> _Attempted:
        for attempt in range(1, self._max_attempts + 1):
            try:
                receipt = await self._send_once(plan, rendered, notification_id)
            except PermanentDeliveryError as error:
                logger.warning("notification %s failed permanently: %s", notification_id, error.reason)
                return _Attempted(DeliveryStatus.FAILED, error.reason, None, attempt)
            except TransientDeliveryError as error:
                if attempt == self._max_attempts:
                    logger.warning("notification %s failed after %d tries: %s", notification_id, attempt, error.reason)
                    return _Attempted(DeliveryStatus.FAILED, f"retries_exhausted:{error.reason}", None, attempt)
                delay = self._backoff.delay(attempt, error.retry_after)
                logger.info(
                    "notification %s: transient failure %s on try %d, retrying in %.1fs",
                    notification_id,
                    error.reason,
                    attempt,
                    delay,
                )
                if self._metrics is not None:
                    self._metrics.delivery_retried(channel=plan.channel.value, template=plan.template)
                await self._sleep(delay)
            else:
                return _Attempted(DeliveryStatus.SENT, None, receipt, attempt)
        raise AssertionError("unreachable: the loop returns on its last attempt")

    async def _send_once(
        self, plan: PlannedNotification, rendered: RenderedNotification, notification_id: str
    ) -> DeliveryReceipt:
        guardian = plan.guardian
        if plan.channel is Channel.EMAIL:
            assert guardian.email is not None  # screen() has failed notifications without an address
            return await self._email.send_email(
                OutgoingEmail(
                    to=guardian.email,
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                    sender=self._email_sender,
                    attachments=plan.attachments,
                    notification_id=notification_id,
                )
            )
        assert guardian.phone is not None
        return await self._sms.send_sms(
            OutgoingSms(
                to_e164=guardian.phone,
                sender_id=plan.school.sms_sender_id,
                text=rendered.sms,
                notification_id=notification_id,
            )
        )

    async def _finish(
        self,
        plan: PlannedNotification,
        notification_id: str,
        status: DeliveryStatus,
        reason: str | None,
        *,
        language: str | None,
        receipt: DeliveryReceipt | None = None,
        segments: int | None = None,
        attempts: int = 0,
    ) -> None:
        await self._ledger.record(
            notification_id,
            status,
            reason=reason,
            provider=receipt.provider if receipt else None,
            provider_message_id=receipt.provider_message_id if receipt else None,
            segments=segments,
            language=language,
        )
        occurred_at = self._clock()
        await self._status_sink.publish_status(
            NotificationStatusReport(
                notification_id=notification_id,
                source_event_id=plan.source.id,
                source_event_type=plan.source.type,
                school_id=plan.school.id,
                guardian_id=plan.guardian.guardian_id,
                channel=plan.channel,
                template=plan.template,
                language=language,
                status=status,
                reason=reason,
                attempt=attempts,
                sms_segments=segments,
                occurred_at=occurred_at,
            )
        )
        if self._metrics is not None:
            self._metrics.notification_recorded(
                channel=plan.channel.value,
                template=plan.template,
                language=language,
                status=status.value,
                event_time=plan.source.time,
                # A receipt means the provider accepted it; the send finished just before this clock reading.
                accepted_at=occurred_at if receipt is not None else None,
            )
