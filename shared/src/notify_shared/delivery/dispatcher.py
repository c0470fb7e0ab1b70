"""The delivery core: claim in the ledger, check eligibility, render, send, record, report.

Every service hands its planned notifications to a `Dispatcher`. The ledger claim comes first, so an event that
Kafka redelivers (after a crash or a rebalance) finds its notifications already recorded and sends nothing twice.

The first try happens while the event is handled. A transient failure does not hold the partition: the
notification moves to the durable retry queue (`notify_shared.ledger.retry_queue`) and `RetryWorker` tries it
again with exponential backoff, until it is sent, fails for good, or passes its deadline (`expired`). When it
cannot be delivered on its channel, the guardian gets the same notification on their other channel, if they
allowed both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

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
from notify_shared.delivery.deadlines import Deadlines, ExpiryReason, expiry_reason
from notify_shared.delivery.eligibility import screen
from notify_shared.delivery.job import DeliveryJob
from notify_shared.delivery.plan import PlannedNotification, SourceEventRef
from notify_shared.delivery.reachability import unreachable_by
from notify_shared.delivery.retry import Backoff
from notify_shared.delivery.status_backlog import StatusBacklog
from notify_shared.delivery.status_sink import StatusSink
from notify_shared.ledger import (
    Claim,
    ClaimRequest,
    DeliveryKey,
    DeliveryLedger,
    DeliveryStatus,
    QueuedNotification,
    RetryQueue,
)
from notify_shared.ledger.keys import notification_id_for
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

    def watch_status_backlog(self, count: Callable[[], Awaitable[int]]) -> None:
        """`count` tells how many status events wait in the backlog; call it when metrics are read."""


@dataclass(frozen=True)
class DeliveryOutcome:
    """What became of one planned notification in this run (`queued`: waiting in the retry queue)."""

    notification_id: str
    status: DeliveryStatus
    reason: str | None = None
    already_recorded: bool = False


_T = TypeVar("_T")
_RenderKey = tuple[str, str, str, int]

RetryListener = Callable[[datetime], Awaitable[None]]
"""Told the due time of every retry scheduled, so the retry worker can wake up in time."""

HELD_FOR_QUIET_HOURS = "quiet_hours"
"""Reason of the `queued` status of a notification held back until the end of quiet hours (`not_before`)."""

FALLBACK_REASON_PREFIX = "fallback_from:"
"""Reason of the `queued` status of a notification created to replace one that failed on the other channel."""


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
        max_attempts: int = 20,
        backoff: Backoff | None = None,
        deadlines: Deadlines | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        concurrency: int = 16,
        metrics: DeliveryMetrics | None = None,
        retry_queue: RetryQueue | None = None,
    ) -> None:
        self._ledger = ledger
        self._metrics = metrics
        self._render = render
        self._email = email
        self._sms = sms
        # A status Kafka refuses is kept in the ledger's database; the retry worker publishes it later.
        self.status_backlog = StatusBacklog(ledger.engine, status_sink, clock=clock)
        self._renew_claims_after = timedelta(seconds=ledger.lease_seconds / 2)
        self._status_sink = self.status_backlog.sink()
        if metrics is not None:
            metrics.watch_status_backlog(self.status_backlog.pending)
        self._email_sender = email_sender
        self._max_attempts = max_attempts
        self._backoff = backoff or Backoff()
        self._deadlines = deadlines or Deadlines()
        self._clock = clock
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self.retry_queue = retry_queue or RetryQueue(ledger.engine, clock=clock)
        self._retry_listener: RetryListener | None = None

    def listen_for_retries(self, listener: RetryListener) -> None:
        """Call `listener` with the due time of each retry this dispatcher schedules."""
        self._retry_listener = listener

    async def dispatch(self, plans: Sequence[PlannedNotification]) -> list[DeliveryOutcome]:
        """Deliver every plan; returns one outcome per plan, in order.

        Raises (so the event is read again) on ledger or Kafka failure, and with `NotificationInFlightError`
        when a claim is held by a sender that may have crashed; every other plan has been delivered by then.
        """
        # A guardian's email and SMS plans share their template and context: render them once. The plans live
        # until this call returns, so the context's id cannot be reused by another while the memo exists.
        renders: dict[_RenderKey, RenderedNotification] = {}
        outcomes: list[DeliveryOutcome] = []
        failures: list[BaseException] = []
        # Claimed together, in one transaction per chunk rather than one per notification; a chunk is small
        # enough to be sent well within the claims' lease. A failure in one chunk does not stop the next.
        chunk_size = 4 * self.concurrency
        for start in range(0, len(plans), chunk_size):
            chunk = plans[start : start + chunk_size]
            claimed_at = self._clock()
            claims = await self._ledger.begin_many([self._claim_request(plan) for plan in chunk])
            try:
                outcomes += await finish_all(
                    self._bounded(self._deliver(plan, claim, renders, claimed_at))
                    for plan, claim in zip(chunk, claims, strict=True)
                )
            except Exception as failure:
                failures.append(failure)
        if failures:
            raise failures[0]
        return outcomes

    async def _deliver(
        self,
        plan: PlannedNotification,
        claim: Claim,
        renders: dict[_RenderKey, RenderedNotification],
        claimed_at: datetime,
    ) -> DeliveryOutcome:
        if claim.in_flight:
            raise NotificationInFlightError(claim.notification_id)
        if not claim.should_send:
            logger.info("notification %s already %s; not sending again", claim.notification_id, claim.previous_status)
            assert claim.previous_status is not None  # not new and not ours: a final status, or queued
            return DeliveryOutcome(claim.notification_id, claim.previous_status, already_recorded=True)

        facts = plan_facts(plan, claim.notification_id)
        verdict = screen(plan.guardian, plan.channel)
        if verdict is not None and not verdict.channel_unusable:
            return await self._settle(facts, verdict.status, verdict.reason)

        now = self._clock()
        if plan.not_after is not None and now >= plan.not_after:
            return await self._settle(facts, DeliveryStatus.EXPIRED, ExpiryReason.MEETING_STARTED.value)

        try:
            rendered = self._rendered(plan, renders)
        except Exception:
            # A template bug must fail this one notification visibly, not block the partition.
            logger.exception("rendering %s failed for notification %s", plan.template, claim.notification_id)
            return await self._settle(facts, DeliveryStatus.FAILED, "template_error")

        job = DeliveryJob(
            notification_id=claim.notification_id,
            source=plan.source,
            school=plan.school,
            guardian=plan.guardian,
            channel=plan.channel,
            template=plan.template,
            rendered=rendered,
            attachments=plan.attachments,
            first_try=max(now, plan.not_before or now),
            deadline=self._deadlines.deadline(
                plan.channel, first_try=max(now, plan.not_before or now), not_after=plan.not_after
            ),
            not_after=plan.not_after,
        )
        if verdict is not None:
            # Rendered all the same: failing as a job lets `_end` hand it to the guardian's other channel.
            return await self._end(job, verdict.status, verdict.reason, from_queue=False)
        if not await self._claim_still_ours(claim, claimed_at):
            logger.info("claim of notification %s passed on while it waited; not sending", job.notification_id)
            raise NotificationInFlightError(claim.notification_id)
        held = plan.not_before is not None and now < plan.not_before
        return await (self._hold_until(job, job.first_try) if held else self._try(job, from_queue=False))

    async def _hold_until(self, job: DeliveryJob, due: datetime) -> DeliveryOutcome:
        """Park a claimed, rendered notification in the retry queue until `due`; not a failed try."""
        await self.retry_queue.schedule(
            job.notification_id, job=job.to_json(), due_at=due, attempt=job.attempt, reason=HELD_FOR_QUIET_HOURS
        )
        await self._publish_facts(
            job_facts(job),
            DeliveryStatus.QUEUED,
            HELD_FOR_QUIET_HOURS,
            language=job.rendered.language,
            attempts=0,
            segments=None,
        )
        if self._retry_listener is not None:
            await self._retry_listener(due)
        return DeliveryOutcome(job.notification_id, DeliveryStatus.QUEUED, HELD_FOR_QUIET_HOURS)

    async def _claim_still_ours(self, claim: Claim, claimed_at: datetime) -> bool:
        # A claim waits for a free slot, normally for moments. If the slots were held for long (sends or status
        # publishes hanging while a provider or Kafka is away), its lease may have run out and another sender may
        # have taken it over; then sending it would send it twice. Past half the lease, renew it first; the other
        # half is for the send itself, which the providers' timeouts keep well below that.
        if self._clock() - claimed_at < self._renew_claims_after:
            return True
        return await self._ledger.renew(claim.notification_id, attempts=claim.attempts)

    def _rendered(
        self, plan: PlannedNotification, renders: dict[_RenderKey, RenderedNotification]
    ) -> RenderedNotification:
        key = (plan.template, plan.guardian.language, plan.school.written_standard, id(plan.context))
        rendered = renders.get(key)
        if rendered is None:
            rendered = renders[key] = self._render(
                plan.template, plan.guardian.language, plan.school.written_standard, plan.context
            )
        return rendered

    async def retry(self, job: DeliveryJob, *, still_ours: Callable[[], Awaitable[bool]]) -> DeliveryOutcome | None:
        """Try a notification from the retry queue (the retry worker's call). Once a concurrency slot is free,
        `still_ours` renews the worker's claim; if the claim has passed on meanwhile, nothing is sent (None)."""
        async with self._slots:
            if not await still_ours():
                logger.info("retry of notification %s passed to another worker; not sending", job.notification_id)
                return None
            return await self._try(job, from_queue=True)

    async def give_up_on_unreadable_retry(self, notification_id: str) -> None:
        """A retry whose stored job cannot be read any more (e.g. written by an incompatible version)."""
        logger.error("retry of notification %s cannot be read; recording it as failed", notification_id)
        await self._ledger.record(
            notification_id, DeliveryStatus.FAILED, reason="retry_unreadable", release_retry=True, only_in_progress=True
        )

    async def settle_without_sending(
        self, plan: PlannedNotification, status: DeliveryStatus, reason: str
    ) -> DeliveryOutcome:
        """Record and report a notification that ends without being sent (e.g. a reminder skipped as too late).

        Claimed like any other, so a redelivered decision does not report twice.
        """
        (claim,) = await self._ledger.begin_many([self._claim_request(plan, stored_language=False)])
        if not claim.should_send:
            assert claim.previous_status is not None
            return DeliveryOutcome(claim.notification_id, claim.previous_status, already_recorded=True)
        return await self._settle(plan_facts(plan, claim.notification_id), status, reason)

    async def _bounded(self, work: Coroutine[Any, Any, _T]) -> _T:
        async with self._slots:
            return await work

    async def _settle(self, facts: _Facts, status: DeliveryStatus, reason: str) -> DeliveryOutcome:
        """End a claimed notification that was never handed to a channel."""
        recorded, _ = await self._report_final(facts, status, reason, language=None)
        return DeliveryOutcome(facts.notification_id, status, reason, already_recorded=not recorded)

    async def _try(self, job: DeliveryJob, *, from_queue: bool) -> DeliveryOutcome:
        """One try of a claimed, rendered notification: it ends final, or goes (back) to the retry queue."""
        now = self._clock()
        expired = expiry_reason(now, deadline=job.deadline, not_after=job.not_after)
        if expired is not None:
            return await self._end(job, DeliveryStatus.EXPIRED, expired.value, from_queue=from_queue)
        try:
            receipt = await self._send_once(job)
        except PermanentDeliveryError as error:
            logger.warning("notification %s failed permanently: %s", job.notification_id, error.reason)
            return await self._end(job, DeliveryStatus.FAILED, error.reason, from_queue=from_queue)
        except TransientDeliveryError as error:
            return await self._after_transient_failure(job, error, from_queue=from_queue)
        return await self._end(job, DeliveryStatus.SENT, None, from_queue=from_queue, receipt=receipt)

    async def _after_transient_failure(
        self, job: DeliveryJob, error: TransientDeliveryError, *, from_queue: bool
    ) -> DeliveryOutcome:
        if job.attempt >= self._max_attempts:
            logger.warning("notification %s failed after %d tries: %s", job.notification_id, job.attempt, error.reason)
            return await self._end(
                job, DeliveryStatus.FAILED, f"retries_exhausted:{error.reason}", from_queue=from_queue
            )
        due = self._clock() + _seconds(self._backoff.delay(job.attempt, error.retry_after))
        if due >= job.deadline:
            logger.warning("notification %s cannot be retried before its deadline", job.notification_id)
            return await self._end(
                job,
                DeliveryStatus.EXPIRED,
                ExpiryReason.DEADLINE_PASSED.value,
                from_queue=from_queue,
                detail=f"last error {error.reason} on try {job.attempt}",
            )
        reason = f"retry_scheduled:{error.reason}"
        logger.info(
            "notification %s: transient failure %s on try %d, next try at %s",
            job.notification_id,
            error.reason,
            job.attempt,
            due.isoformat(),
        )
        await self.retry_queue.schedule(
            job.notification_id, job=job.next_attempt().to_json(), due_at=due, attempt=job.attempt + 1, reason=reason
        )
        await self._publish_facts(
            job_facts(job),
            DeliveryStatus.QUEUED,
            reason,
            language=job.rendered.language,
            attempts=job.attempt,
            segments=None,
        )
        if self._metrics is not None:
            self._metrics.delivery_retried(channel=job.channel.value, template=job.template)
        if self._retry_listener is not None:
            await self._retry_listener(due)
        return DeliveryOutcome(job.notification_id, DeliveryStatus.QUEUED, reason)

    async def _end(
        self,
        job: DeliveryJob,
        status: DeliveryStatus,
        reason: str | None,
        *,
        from_queue: bool,
        receipt: DeliveryReceipt | None = None,
        detail: str | None = None,
    ) -> DeliveryOutcome:
        fallback = self._fallback_for(job) if status in (DeliveryStatus.FAILED, DeliveryStatus.EXPIRED) else None
        recording = asyncio.ensure_future(
            self._report_final(
                job_facts(job),
                status,
                reason,
                language=job.rendered.language,
                receipt=receipt,
                segments=job.rendered.sms_segments if job.channel is Channel.SMS else None,
                attempts=job.attempt,
                detail=detail,
                release_retry=from_queue,
                then_queue=fallback[0] if fallback else None,
            )
        )
        try:
            recorded, fell_back = await asyncio.shield(recording)
        except asyncio.CancelledError:
            # Cancelled (a shutdown) after the provider answered: record that first, or a restart would send
            # the same notification again.
            await recording
            raise
        if fell_back and fallback is not None:
            await self._announce_fallback(*fallback)
        return DeliveryOutcome(job.notification_id, status, reason, already_recorded=not recorded)

    def _fallback_for(self, failed: DeliveryJob) -> tuple[QueuedNotification, DeliveryJob] | None:
        """The same notification on the guardian's other channel, if they allowed it and can get it there.

        It is created in the retry queue in the transaction that records the failure, keyed like any other
        notification (same event, guardian and template), so it is sent at most once, never lost, and not at
        all when that channel already carried this notification. Nothing about a meeting that has started.
        """
        now = self._clock()
        other = Channel.EMAIL if failed.channel is Channel.SMS else Channel.SMS
        guardian = failed.guardian
        if other not in guardian.channels or unreachable_by(guardian, other) is not None:
            return None
        if failed.not_after is not None and now >= failed.not_after:
            return None
        key = DeliveryKey(failed.source.id, guardian.guardian_id, other.value, failed.template)
        job = replace(
            failed,
            notification_id=notification_id_for(key),
            channel=other,
            attempt=1,
            # The window counts from the first try on the first channel: an SMS 24 hours late helps nobody.
            deadline=self._deadlines.deadline(other, first_try=failed.first_try, not_after=failed.not_after),
        )
        queued = QueuedNotification(
            key=key,
            source_event_type=failed.source.type,
            school_id=failed.school.id,
            language=guardian.language,
            job=job.to_json(),
            due_at=now,
            reason=f"{FALLBACK_REASON_PREFIX}{failed.channel.value}",
        )
        return queued, job

    async def _announce_fallback(self, queued: QueuedNotification, job: DeliveryJob) -> None:
        logger.info("notification %s falls back to %s as %s", queued.key, job.channel, job.notification_id)
        await self._publish_facts(
            job_facts(job),
            DeliveryStatus.QUEUED,
            queued.reason,
            language=job.rendered.language,
            attempts=0,
            segments=None,
        )
        if self._retry_listener is not None:
            await self._retry_listener(queued.due_at)

    def _claim_request(self, plan: PlannedNotification, *, stored_language: bool = True) -> ClaimRequest:
        return ClaimRequest(
            self._key(plan),
            source_event_type=plan.source.type,
            school_id=plan.school.id,
            language=plan.guardian.language if stored_language else None,
        )

    @staticmethod
    def _key(plan: PlannedNotification) -> DeliveryKey:
        return DeliveryKey(
            source_event_id=plan.source.id,
            guardian_id=plan.guardian.guardian_id,
            channel=plan.channel.value,
            template=plan.template,
        )

    async def _send_once(self, job: DeliveryJob) -> DeliveryReceipt:
        guardian = job.guardian
        rendered = job.rendered
        if job.channel is Channel.EMAIL:
            assert guardian.email is not None  # screen() has failed notifications without an address
            return await self._email.send_email(
                OutgoingEmail(
                    to=guardian.email,
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                    sender=self._email_sender,
                    attachments=job.attachments,
                    notification_id=job.notification_id,
                )
            )
        assert guardian.phone is not None
        return await self._sms.send_sms(
            OutgoingSms(
                to_e164=guardian.phone,
                sender_id=job.school.sms_sender_id,
                text=rendered.sms,
                notification_id=job.notification_id,
            )
        )

    async def _report_final(
        self,
        facts: _Facts,
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
        occurred_at = await self._publish_facts(
            facts, status, reason, language=language, attempts=attempts, segments=segments
        )
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

    async def _publish_facts(
        self,
        facts: _Facts,
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
class _Facts:
    """The ids a status report and the metrics need, whether the notification got as far as a job or not."""

    notification_id: str
    source: SourceEventRef
    school_id: str
    guardian_id: str
    channel: Channel
    template: str


def plan_facts(plan: PlannedNotification, notification_id: str) -> _Facts:
    return _Facts(notification_id, plan.source, plan.school.id, plan.guardian.guardian_id, plan.channel, plan.template)


def job_facts(job: DeliveryJob) -> _Facts:
    return _Facts(job.notification_id, job.source, job.school.id, job.guardian.guardian_id, job.channel, job.template)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
