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

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from notify_shared.ledger.database import (
    create_engine,
    create_schema,
    insert_ignoring_conflicts,
    read_transaction,
    utc_from_db,
)
from notify_shared.ledger.group_commit import GroupCommit
from notify_shared.ledger.keys import DeliveryKey, notification_id_for
from notify_shared.ledger.liveness import SenderLiveness, abandoned_claim
from notify_shared.ledger.provider_reports import REPORTED_STATUSES, ProviderReportResult, ReportOutcome
from notify_shared.ledger.retry_queue import QueuedNotification
from notify_shared.ledger.status import IN_PROGRESS_STATUSES, DeliveryStatus
from notify_shared.ledger.tables import deliveries, delivery_retries, delivery_status_history

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware."""

DEFAULT_LEASE_SECONDS = 300.0
"""How long a `sending` claim protects a notification from being claimed again. It must cover one whole send,
retries and backoff included, plus any clock skew between replicas."""

LEASE_EXPIRED = "lease_expired"
"""History reason of a claim that took over a `sending` row whose sender went silent (most likely crashed)."""

# Ids per statement: well below the bind parameter limits of SQLite (32766) and asyncpg (32767).
_CHUNK_SIZE = 500

_T = TypeVar("_T")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class UnknownNotificationError(LookupError):
    """`record` was given a notification id that `begin` never created."""


@dataclass(frozen=True)
class ClaimRequest:
    """One key to claim with `begin_many`, with the facts stored when the notification is new."""

    key: DeliveryKey
    source_event_type: str
    school_id: str
    language: str | None = None

    def __post_init__(self) -> None:
        # The school is part of the key; a stored school other than the key's would file the row under another.
        if self.school_id != self.key.school_id:
            raise ValueError("ClaimRequest.school_id must be the school of its key")


@dataclass(frozen=True)
class Claim:
    """The answer of `begin`: whether this caller sends the notification now."""

    notification_id: str
    should_send: bool
    """True for exactly one caller: the one that created the row or took over an abandoned one."""
    previous_status: DeliveryStatus | None
    """The status `begin` found; None when the notification is new."""
    attempts: int
    """Claims so far, this one included when `should_send` is True."""

    @property
    def in_flight(self) -> bool:
        """Someone else holds a live claim: not sent yet, but not ours to send before their lease runs out.

        A caller that must not lose the notification (the holder may have crashed) should retry after the
        lease instead of treating it as done.
        """
        return not self.should_send and self.previous_status is DeliveryStatus.SENDING

    @property
    def awaiting_retry(self) -> bool:
        """It waits in the durable retry queue, whose worker will send it: nothing for this caller to do."""
        return not self.should_send and self.previous_status is DeliveryStatus.QUEUED


@dataclass(frozen=True)
class _RecordRequest:
    """One `record_and_queue` call, waiting for its transaction."""

    notification_id: str
    status: DeliveryStatus
    reason: str | None
    detail: str | None
    kept_when_none: dict[str, Any]
    release_retry: bool
    only_in_progress: bool
    then_queue: QueuedNotification | None
    at: datetime


@dataclass(frozen=True)
class DeliveryRecord:
    """One notification as the ledger stores it. Times are timezone-aware UTC."""

    notification_id: str
    source_event_id: str
    source_event_type: str
    school_id: str
    guardian_id: str
    channel: str
    template: str
    language: str | None
    status: DeliveryStatus
    reason: str | None
    detail: str | None
    provider: str | None
    provider_message_id: str | None
    attempts: int
    segments: int | None
    created_at: datetime
    updated_at: datetime

    @property
    def key(self) -> DeliveryKey:
        return DeliveryKey(self.school_id, self.source_event_id, self.guardian_id, self.channel, self.template)


@dataclass(frozen=True)
class StatusChange:
    """One entry of a notification's status history."""

    status: DeliveryStatus
    reason: str | None
    detail: str | None
    at: datetime


@dataclass(frozen=True)
class DeliveryHistory:
    """A notification with every status it has had, oldest first."""

    delivery: DeliveryRecord
    changes: tuple[StatusChange, ...]


@dataclass(frozen=True)
class SummaryRow:
    """How many notifications of one school and channel are in one status."""

    school_id: str
    channel: str
    status: DeliveryStatus
    count: int


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
        self._insert_if_new = insert_ignoring_conflicts(deliveries, engine.dialect.name)
        self._owns_engine = False
        # Outcomes recorded by concurrent sends share transactions (see group_commit).
        self._records = GroupCommit(engine, self._apply_records)

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
            claims = await self._claim(connection, first_requests, now)

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
            _RecordRequest(
                notification_id=notification_id,
                status=DeliveryStatus(status),
                reason=_fit("reason", reason),
                detail=_fit("detail", detail),
                kept_when_none={
                    "provider": _fit("provider", provider),
                    "provider_message_id": _fit("provider_message_id", provider_message_id),
                    "segments": segments,
                    "language": _fit("language", language),
                },
                release_retry=release_retry,
                only_in_progress=only_in_progress,
                then_queue=then_queue,
                at=self._now(),
            )
        )

    async def _apply_records(
        self, connection: AsyncConnection, requests: Sequence[_RecordRequest]
    ) -> list[tuple[bool, bool] | Exception]:
        """Record a group commit's outcomes with a few statements for all of them, not a few per outcome: on SQLite
        every statement is a round trip to aiosqlite's thread, and while they run, emails the SMTP server has
        accepted wait unrecorded (the window in which a kill -9 makes a resend)."""
        ids = [request.notification_id for request in requests]
        if len(set(ids)) < len(ids):
            # The same notification twice in one transaction (two callers racing): in rounds without repeats, in
            # the order they came, so the later outcome sees the earlier one as separate calls would.
            return [
                outcome
                for round_ in _without_repeats(requests)
                for outcome in await self._apply_records(connection, round_)
            ]
        # Locked on PostgreSQL, so no other replica changes a status between this read and the updates below; on
        # SQLite the transaction holds the write lock already.
        found = {
            row.notification_id: DeliveryStatus(row.status)
            for row in await connection.execute(
                sa.select(deliveries.c.notification_id, deliveries.c.status)
                .where(deliveries.c.notification_id.in_(ids))
                .with_for_update()
            )
        }
        outcomes: list[tuple[bool, bool] | Exception] = []
        applying: list[int] = []
        for index, request in enumerate(requests):
            status = found.get(request.notification_id)
            if status is None:
                outcomes.append(UnknownNotificationError(request.notification_id))
            elif request.only_in_progress and status not in IN_PROGRESS_STATUSES:
                outcomes.append((False, False))  # another sender's claim settled it; keep what it recorded
            else:
                outcomes.append((True, False))
                applying.append(index)
        if not applying:
            return outcomes
        applied = [requests[index] for index in applying]
        # One UPDATE per shape of values (which optional columns are set), each run for all its rows at once.
        updates: dict[tuple[bool, tuple[str, ...]], list[dict[str, Any]]] = defaultdict(list)
        for request in applied:
            values = _record_values(request)
            shape = (request.status is DeliveryStatus.SENDING, tuple(sorted(values)))
            updates[shape].append(
                {"b_notification_id": request.notification_id} | {f"b_{name}": value for name, value in values.items()}
            )
        for (counts_attempt, names), rows in updates.items():
            assignments: dict[Any, Any] = {name: sa.bindparam(f"b_{name}") for name in names}
            if counts_attempt:
                assignments["attempts"] = deliveries.c.attempts + 1
            matching = deliveries.c.notification_id == sa.bindparam("b_notification_id")
            await connection.execute(sa.update(deliveries).where(matching).values(assignments), rows)
        history = [_change(r.notification_id, r.status, r.reason, r.at, detail=r.detail) for r in applied]
        await connection.execute(sa.insert(delivery_status_history), history)
        released = [request.notification_id for request in applied if request.release_retry]
        if released:
            retries_of_released = delivery_retries.c.notification_id.in_(released)
            await connection.execute(sa.delete(delivery_retries).where(retries_of_released))
        for index in applying:
            fallback = requests[index].then_queue
            if fallback is not None:
                outcomes[index] = (True, await self._queue_new(connection, fallback, requests[index].at))
        return outcomes

    async def _queue_new(self, connection: AsyncConnection, queued: QueuedNotification, now: datetime) -> bool:
        notification_id = notification_id_for(queued.key)
        row = {
            "notification_id": notification_id,
            "source_event_id": queued.key.source_event_id,
            "source_event_type": queued.source_event_type,
            "school_id": queued.school_id,
            "guardian_id": queued.key.guardian_id,
            "channel": str(queued.key.channel),
            "template": queued.key.template,
            "language": _fit("language", queued.language),
            "status": DeliveryStatus.QUEUED.value,
            "reason": _fit("reason", queued.reason),
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        inserted = await connection.execute(self._insert_if_new.values([row]).returning(deliveries.c.notification_id))
        if inserted.first() is None:
            return False  # that channel already carries (or carried) this notification
        await connection.execute(
            sa.insert(delivery_status_history).values(
                _change(notification_id, DeliveryStatus.QUEUED, queued.reason, now)
            )
        )
        await connection.execute(
            sa.insert(delivery_retries).values(
                notification_id=notification_id,
                due_at=_as_utc(queued.due_at),
                attempt=1,
                job=queued.job,
                claimed_by=None,
                claimed_until=None,
            )
        )
        return True

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
        async with read_transaction(self._engine) as connection:
            row = (
                await connection.execute(sa.select(deliveries).where(deliveries.c.notification_id == notification_id))
            ).one_or_none()
        return None if row is None else _delivery_from(row)

    async def history(self, source_event_id: str) -> list[DeliveryHistory]:
        """Every notification one source event caused, each with its status history.

        Notifications come in the order they were created (then by guardian, channel and template); each
        history in the order it was recorded. An unknown event gives an empty list.
        """
        async with read_transaction(self._engine) as connection:
            rows = (
                await connection.execute(
                    sa.select(deliveries)
                    .where(deliveries.c.source_event_id == source_event_id)
                    .order_by(
                        deliveries.c.created_at,
                        deliveries.c.guardian_id,
                        deliveries.c.channel,
                        deliveries.c.template,
                    )
                )
            ).all()
            change_rows = (
                await connection.execute(
                    sa.select(delivery_status_history)
                    .join(deliveries)
                    .where(deliveries.c.source_event_id == source_event_id)
                    # The id, not `at`: it follows the order of recording even if replicas' clocks disagree.
                    .order_by(delivery_status_history.c.id)
                )
            ).all()
        changes: defaultdict[str, list[StatusChange]] = defaultdict(list)
        for change in change_rows:
            changes[change.notification_id].append(
                StatusChange(DeliveryStatus(change.status), change.reason, change.detail, utc_from_db(change.at))
            )
        return [DeliveryHistory(_delivery_from(row), tuple(changes[row.notification_id])) for row in rows]

    async def summary(self, since: datetime, until: datetime) -> list[SummaryRow]:
        """Counts of notifications created in [since, until), by school, channel and current status.

        Sorted by school, channel and status (code point order). `since` and `until` must be timezone-aware.
        """
        notifications = sa.func.count().label("notifications")
        async with read_transaction(self._engine) as connection:
            rows = (
                await connection.execute(
                    sa.select(deliveries.c.school_id, deliveries.c.channel, deliveries.c.status, notifications)
                    .where(deliveries.c.created_at >= _as_utc(since), deliveries.c.created_at < _as_utc(until))
                    .group_by(deliveries.c.school_id, deliveries.c.channel, deliveries.c.status)
                )
            ).all()
        summary = [
            SummaryRow(row.school_id, row.channel, DeliveryStatus(row.status), row.notifications) for row in rows
        ]
        # Sorted here, not in SQL: PostgreSQL's collation and SQLite's byte order can disagree on ids.
        return sorted(summary, key=lambda row: (row.school_id, row.channel, row.status.value))

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
        status = DeliveryStatus(status)
        if status not in REPORTED_STATUSES:
            raise ValueError(f"a delivery report cannot set {status.value!r}")
        if provider_message_id is None and notification_id is None:
            raise ValueError("a delivery report needs the provider's message id or our notification id")
        now = self._now()
        reason = _fit("reason", reason)
        async with self._engine.begin() as connection:
            found = await self._reported_delivery(connection, provider, provider_message_id, notification_id)
            if found is None:
                return ProviderReportResult(ReportOutcome.UNKNOWN, None)
            updated = (
                await connection.execute(
                    sa.update(deliveries)
                    .where(
                        deliveries.c.notification_id == found.notification_id,
                        deliveries.c.status == DeliveryStatus.SENT.value,
                    )
                    .values(status=status.value, reason=reason, detail=None, updated_at=now)
                    .returning(*deliveries.c)
                )
            ).one_or_none()
            if updated is None:
                # Read again: on PostgreSQL a concurrent report may have changed the row after `found` was read.
                current = (
                    await connection.execute(
                        sa.select(deliveries).where(deliveries.c.notification_id == found.notification_id)
                    )
                ).one()
                delivery = _delivery_from(current)
                if delivery.status is status:
                    return ProviderReportResult(ReportOutcome.REPEATED, delivery)
                if not delivery.status.is_final:
                    return ProviderReportResult(ReportOutcome.NOT_SENT_YET, delivery)
                return ProviderReportResult(ReportOutcome.IGNORED, delivery)
            await connection.execute(
                sa.insert(delivery_status_history).values(_change(found.notification_id, status, reason, now))
            )
        return ProviderReportResult(ReportOutcome.APPLIED, _delivery_from(updated))

    async def _reported_delivery(
        self,
        connection: AsyncConnection,
        provider: str,
        provider_message_id: str | None,
        notification_id: str | None,
    ) -> sa.Row[Any] | None:
        provider_message_id = _fit("provider_message_id", provider_message_id)
        if provider_message_id is not None:
            row = (
                await connection.execute(
                    sa.select(deliveries)
                    .where(deliveries.c.provider == provider, deliveries.c.provider_message_id == provider_message_id)
                    # A provider should never reuse a reference; if one does, the newest notification is meant.
                    .order_by(deliveries.c.created_at.desc())
                    .limit(1)
                )
            ).first()
            if row is not None:
                return row
        if notification_id is None:
            return None
        row = (
            await connection.execute(sa.select(deliveries).where(deliveries.c.notification_id == notification_id))
        ).first()
        if row is None:
            return None
        # Provider and reference are None until the send is recorded (`not_sent_yet`); once set they must agree,
        # so a report about another provider's message can never touch this notification.
        if row.provider is not None and row.provider != provider:
            return None
        stored = row.provider_message_id
        if provider_message_id is not None and stored is not None and stored != provider_message_id:
            return None
        return row

    async def _claim(
        self, connection: AsyncConnection, requests: dict[str, ClaimRequest], now: datetime
    ) -> dict[str, Claim]:
        # Sorted: every claimer then locks rows in the same order, so overlapping batches on PostgreSQL wait
        # for each other instead of deadlocking.
        ordered_ids = sorted(requests)
        inserted = await self._insert_new(connection, [(nid, requests[nid]) for nid in ordered_ids], now)
        claims = {nid: Claim(nid, True, None, 1) for nid in inserted}
        history: list[dict[str, Any]] = [_change(nid, DeliveryStatus.SENDING, None, now) for nid in inserted]

        existing = [nid for nid in ordered_ids if nid not in inserted]
        found = await self._states(connection, existing)
        unfinished = [nid for nid in existing if not found[nid][0].is_final]
        reclaimed = await self._reclaim(connection, unfinished, now)
        if self.liveness is not None:
            await self.liveness.own_claims(connection, {**dict.fromkeys(inserted, 1), **reclaimed})
        for nid, attempts in reclaimed.items():
            previous = found[nid][0]
            claims[nid] = Claim(nid, True, previous, attempts)
            reason = LEASE_EXPIRED if previous is DeliveryStatus.SENDING else None
            history.append(_change(nid, DeliveryStatus.SENDING, reason, now))

        # A row we saw unfinished but could not take was claimed (or finished) by someone else meanwhile:
        # report what it is now, not what we saw.
        current = {**found, **await self._states(connection, [n for n in unfinished if n not in reclaimed])}
        for nid in existing:
            if nid not in claims:
                status, attempts = current[nid]
                claims[nid] = Claim(nid, False, status, attempts)

        if history:
            await connection.execute(sa.insert(delivery_status_history), history)
        return claims

    async def _insert_new(
        self, connection: AsyncConnection, requests: list[tuple[str, ClaimRequest]], now: datetime
    ) -> set[str]:
        rows = [
            {
                "notification_id": nid,
                "source_event_id": request.key.source_event_id,
                "source_event_type": request.source_event_type,
                "school_id": request.school_id,
                "guardian_id": request.key.guardian_id,
                "channel": str(request.key.channel),
                "template": request.key.template,
                "language": _fit("language", request.language),
                "status": DeliveryStatus.SENDING.value,
                "attempts": 1,
                "created_at": now,
                "updated_at": now,
            }
            for nid, request in requests
        ]
        inserted: set[str] = set()
        for chunk in _chunks(rows):
            # RETURNING gives only the rows this statement inserted; a key held by someone else gives nothing.
            result = await connection.execute(self._insert_if_new.values(chunk).returning(deliveries.c.notification_id))
            inserted.update(result.scalars())
        return inserted

    async def _states(self, connection: AsyncConnection, ids: list[str]) -> dict[str, tuple[DeliveryStatus, int]]:
        states: dict[str, tuple[DeliveryStatus, int]] = {}
        for chunk in _chunks(ids):
            result = await connection.execute(
                sa.select(deliveries.c.notification_id, deliveries.c.status, deliveries.c.attempts).where(
                    deliveries.c.notification_id.in_(chunk)
                )
            )
            states.update({row.notification_id: (DeliveryStatus(row.status), row.attempts) for row in result})
        return states

    async def _reclaim(self, connection: AsyncConnection, ids: list[str], now: datetime) -> dict[str, int]:
        # One conditional UPDATE is the claim: a row another sender took since we read it no longer matches
        # (on PostgreSQL the second UPDATE waits for the first, then re-checks the condition on the new row).
        stale_before = now - self._lease
        gone: sa.ColumnElement[bool] = sa.false()
        if self.liveness is not None:
            # The holder fell silent: it crashed, so nothing of this claim is being sent any more.
            gone = abandoned_claim(deliveries.c.notification_id, deliveries.c.attempts, now, self.liveness.timeout)
        claimable = sa.and_(
            deliveries.c.status == DeliveryStatus.SENDING.value, sa.or_(deliveries.c.updated_at <= stale_before, gone)
        )
        reclaimed: dict[str, int] = {}
        for chunk in _chunks(ids):
            result = await connection.execute(
                sa.update(deliveries)
                .where(deliveries.c.notification_id.in_(chunk), claimable)
                .values(
                    status=DeliveryStatus.SENDING.value,
                    reason=None,
                    detail=None,
                    attempts=deliveries.c.attempts + 1,
                    updated_at=now,
                )
                .returning(deliveries.c.notification_id, deliveries.c.attempts)
            )
            reclaimed.update({row.notification_id: row.attempts for row in result})
        return reclaimed

    def _now(self) -> datetime:
        return _as_utc(self._clock())


def _record_values(request: _RecordRequest) -> dict[str, Any]:
    """The columns a recorded outcome sets; provider, message id, segments and language only when given."""
    values: dict[str, Any] = {
        "status": request.status.value,
        "reason": request.reason,
        "detail": request.detail,
        "updated_at": request.at,
    }
    values.update({name: value for name, value in request.kept_when_none.items() if value is not None})
    return values


def _change(
    notification_id: str, status: DeliveryStatus, reason: str | None, at: datetime, *, detail: str | None = None
) -> dict[str, Any]:
    return {
        "notification_id": notification_id,
        "status": status.value,
        "reason": reason,
        "detail": detail,
        "at": at,
    }


def _without_repeats(requests: Sequence[_RecordRequest]) -> list[list[_RecordRequest]]:
    """`requests` cut, in order, into runs in which no notification comes twice."""
    rounds: list[list[_RecordRequest]] = [[]]
    seen: set[str] = set()
    for request in requests:
        if request.notification_id in seen:
            rounds.append([])
            seen.clear()
        rounds[-1].append(request)
        seen.add(request.notification_id)
    return rounds


def _fit(column: str, value: str | None) -> str | None:
    # A status must never fail to be recorded because a provider sent a long text: PostgreSQL would reject it,
    # after the message went out.
    length = getattr(deliveries.c[column].type, "length", None)
    if value is None or length is None or len(value) <= length:
        return value
    return value[: length - 1] + "…"


def _chunks(items: list[_T]) -> Iterator[list[_T]]:
    for start in range(0, len(items), _CHUNK_SIZE):
        yield items[start : start + _CHUNK_SIZE]


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: the ledger needs timezone-aware times")
    return moment.astimezone(UTC)


def _delivery_from(row: sa.Row[Any]) -> DeliveryRecord:
    return DeliveryRecord(
        notification_id=row.notification_id,
        source_event_id=row.source_event_id,
        source_event_type=row.source_event_type,
        school_id=row.school_id,
        guardian_id=row.guardian_id,
        channel=row.channel,
        template=row.template,
        language=row.language,
        status=DeliveryStatus(row.status),
        reason=row.reason,
        detail=row.detail,
        provider=row.provider,
        provider_message_id=row.provider_message_id,
        attempts=row.attempts,
        segments=row.segments,
        created_at=utc_from_db(row.created_at),
        updated_at=utc_from_db(row.updated_at),
    )
