"""The delivery ledger: each notification claimed before it is sent, so a redelivered event never sends twice.

The flow for every notification (see `notify_shared.delivery.dispatcher`):

1. `begin(key, ...)` claims the key. A new key is inserted as `sending`; a key left `sending` by a sender whose
   lease ran out (it crashed) is moved to `sending` again. Only the caller whose statement made that change gets
   `should_send=True`, so concurrent tasks, processes and replicas cannot both send.
2. The caller sends, then `record(notification_id, sent | failed | ...)`, or, after a transient failure,
   `RetryQueue.schedule` moves it to `queued` with its next try in `delivery_retries`
   (`notify_shared.ledger.retry_queue`). From then on the retry worker owns it, not `begin`.

Every status change is appended to `delivery_status_history` in the same transaction as the row update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from notify_shared.ledger.claims import LEASE_EXPIRED, Claims
from notify_shared.ledger.database import create_engine, create_schema, insert_ignoring_conflicts
from notify_shared.ledger.group_commit import GroupCommit
from notify_shared.ledger.keys import DeliveryKey, notification_id_for
from notify_shared.ledger.liveness import SenderLiveness
from notify_shared.ledger.outcomes import Outcomes, RecordRequest
from notify_shared.ledger.provider_reports import ProviderReportResult
from notify_shared.ledger.queries import LedgerQueries
from notify_shared.ledger.records import (
    Claim,
    ClaimRequest,
    DeliveryHistory,
    DeliveryRecord,
    StatusChange,
    SummaryRow,
    UnknownNotificationError,
)
from notify_shared.ledger.reports import ReportApplier
from notify_shared.ledger.retry_queue import QueuedNotification
from notify_shared.ledger.rows import as_utc, fit
from notify_shared.ledger.status import DeliveryStatus
from notify_shared.ledger.tables import deliveries

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware."""

DEFAULT_LEASE_SECONDS = 300.0
"""How long a `sending` claim protects a notification from being claimed again. It must cover one whole send,
retries and backoff included, plus any clock skew between replicas."""

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "LEASE_EXPIRED",
    "Claim",
    "ClaimRequest",
    "Clock",
    "DeliveryHistory",
    "DeliveryLedger",
    "DeliveryRecord",
    "StatusChange",
    "SummaryRow",
    "UnknownNotificationError",
]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DeliveryLedger:
    """Records every notification under its `DeliveryKey`, so that each is sent at most once per claim.

    Works on SQLite and PostgreSQL through SQLAlchemy's async engine. Create it with `connect(url)` (which
    owns and closes its engine) or around an engine you manage yourself.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock = _utc_now,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        liveness: SenderLiveness | None = None,
    ) -> None:
        if lease_seconds < 0:
            raise ValueError("lease_seconds must not be negative")
        self._engine = engine
        self._clock = clock
        self._lease = timedelta(seconds=lease_seconds)
        self.liveness = liveness
        """This sender's heartbeat: with it, claims are marked as ours and a silent holder's are taken over."""
        insert_if_new = insert_ignoring_conflicts(deliveries, engine.dialect.name)
        self._claims = Claims(insert_if_new, self._lease)
        self._outcomes = Outcomes(insert_if_new)
        self._queries = LedgerQueries(engine)
        self._reports = ReportApplier(engine)
        self._owns_engine = False
        # Outcomes recorded by concurrent sends share transactions (see group_commit).
        self._records = GroupCommit(engine, self._outcomes.apply)

    @classmethod
    async def connect(
        cls, url: str, *, clock: Clock = _utc_now, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> DeliveryLedger:
        """Open the database at `url` (see `create_engine`), create missing tables, return a ledger on it."""
        engine = create_engine(url)
        try:
            await create_schema(engine)
            ledger = cls(engine, clock=clock, lease_seconds=lease_seconds)
        except BaseException:
            await engine.dispose()
            raise
        ledger._owns_engine = True
        return ledger

    @property
    def lease_seconds(self) -> float:
        """How long a `sending` claim keeps other callers from claiming the same notification."""
        return self._lease.total_seconds()

    @property
    def engine(self) -> AsyncEngine:
        """The engine, for services that keep their own tables in the same database."""
        return self._engine

    async def aclose(self) -> None:
        """Close the engine if `connect` created it; an engine passed in stays open for its owner."""
        if self._owns_engine:
            await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def begin(self, key: DeliveryKey, *, source_event_type: str, school_id: str, language: str | None) -> Claim:
        """Claim `key` before sending; send only if the returned claim says `should_send`.

        New keys are stored as `sending`. A key found `sending` with a lease older than `lease_seconds` (its
        sender crashed) is claimed again. A final status, a younger `sending`, or `queued` (the retry queue
        owns it) is not.
        """
        (claim,) = await self.begin_many([ClaimRequest(key, source_event_type, school_id, language)])
        return claim

    async def begin_many(self, requests: Sequence[ClaimRequest]) -> list[Claim]:
        """Claim many keys in one transaction; one claim per request, in the same order.

        A key repeated within `requests` is claimed once: its first occurrence may get `should_send`, later
        ones do not. Every claim starts the lease clock, so claim in batches you can send within
        `lease_seconds`.
        """
        if not requests:
            return []
        now = self._now()
        ids = [notification_id_for(request.key) for request in requests]
        first_requests: dict[str, ClaimRequest] = {}
        for notification_id, request in zip(ids, requests, strict=True):
            first_requests.setdefault(notification_id, request)

        async with self._engine.begin() as connection:
            claims = await self._claims.claim(connection, first_requests, now, self.liveness)

        answered: set[str] = set()
        ordered = []
        for notification_id in ids:
            claim = claims[notification_id]
            if notification_id in answered and claim.should_send:
                claim = Claim(notification_id, False, DeliveryStatus.SENDING, claim.attempts)
            answered.add(notification_id)
            ordered.append(claim)
        return ordered

    async def record(
        self,
        notification_id: str,
        status: DeliveryStatus,
        *,
        reason: str | None = None,
        detail: str | None = None,
        provider: str | None = None,
        provider_message_id: str | None = None,
        segments: int | None = None,
        language: str | None = None,
        release_retry: bool = False,
        only_in_progress: bool = False,
    ) -> bool:
        """Set the notification's status and append it to its history, in one transaction; True when recorded.

        With `release_retry`, the notification's entry in the retry queue is deleted in the same transaction,
        so a retry that ends (sent, failed, expired) can never be tried again. With `only_in_progress`, a
        notification that is already final is left as it is and False is returned: a sender whose claim passed
        on to another must not overwrite what that one recorded.

        `reason` (a short machine code) and `detail` (short, no personal data) describe this status and
        replace the previous ones; `provider`, `provider_message_id`, `segments` and `language` are kept when
        None. Recording `sending` counts another attempt and renews the lease. Over-long texts are cut to fit.
        Raises `UnknownNotificationError` if `begin` never created `notification_id`.
        """
        recorded, _ = await self.record_and_queue(
            notification_id,
            status,
            reason=reason,
            detail=detail,
            provider=provider,
            provider_message_id=provider_message_id,
            segments=segments,
            language=language,
            release_retry=release_retry,
            only_in_progress=only_in_progress,
        )
        return recorded

    async def record_and_queue(
        self,
        notification_id: str,
        status: DeliveryStatus,
        *,
        reason: str | None = None,
        detail: str | None = None,
        provider: str | None = None,
        provider_message_id: str | None = None,
        segments: int | None = None,
        language: str | None = None,
        release_retry: bool = False,
        only_in_progress: bool = False,
        then_queue: QueuedNotification | None = None,
    ) -> tuple[bool, bool]:
        """`record`, plus `then_queue`: another notification (the fallback on the other channel) created as
        `queued` with its retry due, in the same transaction, unless its key exists already, so it cannot be lost
        between the two. Answers (recorded, whether `then_queue` created its notification)."""
        return await self._records.submit(
            RecordRequest(
                notification_id=notification_id,
                status=DeliveryStatus(status),
                reason=fit("reason", reason),
                detail=fit("detail", detail),
                kept_when_none={
                    "provider": fit("provider", provider),
                    "provider_message_id": fit("provider_message_id", provider_message_id),
                    "segments": segments,
                    "language": fit("language", language),
                },
                release_retry=release_retry,
                only_in_progress=only_in_progress,
                then_queue=then_queue,
                at=self._now(),
            )
        )

    async def renew(self, notification_id: str, *, attempts: int) -> bool:
        """Restart the lease of our claim (`Claim.attempts`); False when it is no longer ours.

        A claim stops being ours when another sender took it over after its lease ran out (which counted another
        attempt) or when it was settled. Call it before sending on a claim that may have waited long.
        """
        async with self._engine.begin() as connection:
            renewed = await connection.execute(
                sa.update(deliveries)
                .where(
                    deliveries.c.notification_id == notification_id,
                    deliveries.c.status == DeliveryStatus.SENDING.value,
                    deliveries.c.attempts == attempts,
                )
                .values(updated_at=self._clock())
            )
            return bool(renewed.rowcount == 1)

    async def get(self, key_or_notification_id: DeliveryKey | str) -> DeliveryRecord | None:
        """The notification with this key or id, or None if it was never claimed."""
        notification_id = (
            notification_id_for(key_or_notification_id)
            if isinstance(key_or_notification_id, DeliveryKey)
            else key_or_notification_id
        )
        return await self._queries.get(notification_id)

    async def history(self, source_event_id: str, source: str | None = None) -> list[DeliveryHistory]:
        """Every notification one source event caused, each with its status history.

        An event id is only unique per CloudEvents source: without `source`, the notifications of every event
        with this id (of any school and source) are listed. Notifications come in the order they were created
        (then by guardian, channel and template); each history in the order it was recorded. An unknown event
        gives an empty list.
        """
        return await self._queries.history(source_event_id, source)

    async def summary(self, since: datetime, until: datetime) -> list[SummaryRow]:
        """Counts of notifications created in [since, until), by school, channel and current status.

        Sorted by school, channel and status (code point order). `since` and `until` must be timezone-aware.
        """
        return await self._queries.summary(since, until)

    async def apply_provider_report(
        self,
        provider: str,
        provider_message_id: str | None,
        status: DeliveryStatus,
        reason: str | None = None,
        *,
        notification_id: str | None = None,
    ) -> ProviderReportResult:
        """Apply a provider's delivery report: a `sent` notification becomes `delivered`, `failed` or `bounced`.

        The notification is found by `provider` and `provider_message_id` (the reference in the provider's receipt
        when it accepted the message), else by our `notification_id` when the provider echoes it back and the
        stored provider and reference do not contradict the report. Only a `sent` notification changes: one
        conditional UPDATE and its history row in one transaction, so a repeated or concurrent report changes
        nothing more (see `ReportOutcome`). `reason` is a short code without personal data, cut to fit.
        """
        return await self._reports.apply(
            provider, provider_message_id, status, reason, notification_id=notification_id, now=self._now()
        )

    def _now(self) -> datetime:
        return as_utc(self._clock())
