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
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

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
from notify_shared.contract import Channel
from notify_shared.delivery.deadlines import Deadlines, ExpiryReason, expiry_reason
from notify_shared.delivery.eligibility import screen
from notify_shared.delivery.fallback import fallback_for
from notify_shared.delivery.job import DeliveryJob
from notify_shared.delivery.outcome import DeliveryOutcome, NotificationInFlightError
from notify_shared.delivery.plan import PlannedNotification
from notify_shared.delivery.reporting import DeliveryMetrics, NotificationFacts, OutcomeReporter, job_facts, plan_facts
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
from notify_shared.rendering import RenderedNotification

logger = logging.getLogger(__name__)

Render = Callable[[str, str, str, Mapping[str, object]], RenderedNotification]
"""(template, wanted language, school's written standard, context) → the rendered notification."""


_T = TypeVar("_T")
_RenderKey = tuple[str, str, str, int]

RetryListener = Callable[[datetime], Awaitable[None]]
"""Told the due time of every retry scheduled, so the retry worker can wake up in time."""

HELD_FOR_QUIET_HOURS = "quiet_hours"
"""Reason of the `queued` status of a notification held back until the end of quiet hours (`not_before`)."""


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
        self._reporter = OutcomeReporter(ledger, self.status_backlog.sink(), clock=clock, metrics=metrics)
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

    @property
    def ledger(self) -> DeliveryLedger:
        return self._ledger

    def listen_for_retries(self, listener: RetryListener) -> None:
        """Call `listener` with the due time of each retry this dispatcher schedules."""
        self._retry_listener = listener

    @property
    def claim_chunk_size(self) -> int:
        """How many plans `dispatch` claims in one ledger transaction: enough to keep every slot busy, few
        enough to be sent well within the claims' lease."""
        return 4 * self.concurrency

    async def dispatch(self, plans: Sequence[PlannedNotification]) -> list[DeliveryOutcome]:
        """Deliver every plan; returns one outcome per plan, in order.

        Raises (so the event is read again) on ledger or Kafka failure, and with `NotificationInFlightError`
        when a claim is held by a sender that may have crashed; every other plan has been delivered by then.
        """
        outcomes: list[DeliveryOutcome] = []
        for result in await self.dispatch_each(plans):
            if isinstance(result, NotificationInFlightError):
                raise result
            outcomes.append(result)
        return outcomes

    async def dispatch_each(
        self, plans: Sequence[PlannedNotification]
    ) -> list[DeliveryOutcome | NotificationInFlightError]:
        """`dispatch`, for callers that settle each plan themselves (a batch of scheduled work): a plan whose
        claim another sender holds gives its `NotificationInFlightError` in its place instead of failing the call.
        Still raises on ledger or Kafka failure, once every other chunk has been delivered."""
        # A guardian's email and SMS plans share their template and context: render them once. The plans live
        # until this call returns, so the context's id cannot be reused by another while the memo exists.
        renders: dict[_RenderKey, RenderedNotification] = {}
        results: list[DeliveryOutcome | NotificationInFlightError] = []
        failures: list[BaseException] = []
        # Claimed together, in one transaction per chunk rather than one per notification. A failure in one
        # chunk does not stop the next.
        chunk_size = self.claim_chunk_size
        for start in range(0, len(plans), chunk_size):
            chunk = plans[start : start + chunk_size]
            claimed_at = self._clock()
            claims = await self._ledger.begin_many([self._claim_request(plan) for plan in chunk])
            # Every delivery runs to its end before a failure is raised (see `finish_all`); a claim held elsewhere
            # is that plan's result, not a failure.
            delivered = await asyncio.gather(
                *(
                    self._bounded(self._deliver(plan, claim, renders, claimed_at))
                    for plan, claim in zip(chunk, claims, strict=True)
                ),
                return_exceptions=True,
            )
            for result in delivered:
                if isinstance(result, DeliveryOutcome | NotificationInFlightError):
                    results.append(result)
                else:
                    failures.append(result)
        if failures:
            raise failures[0]
        return results

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
            logger.info("claim of notification %s may have passed on while it waited; not sending", job.notification_id)
            raise NotificationInFlightError(claim.notification_id)
        held = plan.not_before is not None and now < plan.not_before
        return await (self._hold_until(job, job.first_try) if held else self._try(job, from_queue=False))

    async def _hold_until(self, job: DeliveryJob, due: datetime) -> DeliveryOutcome:
        """Park a claimed, rendered notification in the retry queue until `due`; not a failed try."""
        await self.retry_queue.schedule(
            job.notification_id, job=job.to_json(), due_at=due, attempt=job.attempt, reason=HELD_FOR_QUIET_HOURS
        )
        await self._reporter.publish(
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
        liveness = self._ledger.liveness
        if liveness is not None and not liveness.may_send():
            # Our heartbeat is overdue: others may soon judge us gone and take the claim over.
            return False
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
        (outcome,) = await self.settle_many_without_sending([(plan, status, reason)])
        return outcome

    async def settle_many_without_sending(
        self, endings: Sequence[tuple[PlannedNotification, DeliveryStatus, str]]
    ) -> list[DeliveryOutcome]:
        """`settle_without_sending` for many (plan, status, reason) at once: one claim transaction for all of
        them, and their records share group commits. One outcome per ending, in order."""
        claims = await self._ledger.begin_many(
            [self._claim_request(plan, stored_language=False) for plan, _, _ in endings]
        )
        return await finish_all(
            self._settle_claimed(plan, claim, status, reason)
            for (plan, status, reason), claim in zip(endings, claims, strict=True)
        )

    async def _settle_claimed(
        self, plan: PlannedNotification, claim: Claim, status: DeliveryStatus, reason: str
    ) -> DeliveryOutcome:
        if not claim.should_send:
            assert claim.previous_status is not None
            return DeliveryOutcome(claim.notification_id, claim.previous_status, already_recorded=True)
        return await self._settle(plan_facts(plan, claim.notification_id), status, reason)

    async def _bounded(self, work: Coroutine[Any, Any, _T]) -> _T:
        async with self._slots:
            return await work

    async def _settle(self, facts: NotificationFacts, status: DeliveryStatus, reason: str) -> DeliveryOutcome:
        """End a claimed notification that was never handed to a channel."""
        recorded, _ = await self._reporter.record_and_report(facts, status, reason, language=None)
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
        await self._reporter.publish(
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
        fallback = (
            fallback_for(job, now=self._clock(), deadlines=self._deadlines)
            if status in (DeliveryStatus.FAILED, DeliveryStatus.EXPIRED)
            else None
        )
        recording = asyncio.ensure_future(
            self._reporter.record_and_report(
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

    async def _announce_fallback(self, queued: QueuedNotification, job: DeliveryJob) -> None:
        logger.info("notification %s falls back to %s as %s", queued.key, job.channel, job.notification_id)
        await self._reporter.publish(
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
            school_id=plan.school.id,
            source=plan.source.source,
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


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
