"""Status events that could not be published, kept in the ledger's database until Kafka takes them.

A status event is published after the ledger has recorded the outcome. If that publish fails (the brokers are
away for longer than the producer's own retries), the outcome is safe but the event would be gone: the event's
handler would fail, be handled again, find every notification recorded, and publish nothing. Instead the report
is kept here and the event goes on; the retry worker publishes what is kept each time it wakes (at least every
`DELIVERY_RETRY_POLL_INTERVAL`). The operators' view of delivery catches up once Kafka is back.

A kept status is published at least once: a crash between publishing and deleting it publishes it again, and it
may arrive after a later status of the same notification; consumers order by the event's `time`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from notify_shared.contract import NotificationStatusReport
from notify_shared.delivery.status_sink import StatusSink
from notify_shared.ledger.tables import unpublished_statuses

logger = logging.getLogger(__name__)


class StatusBacklog:
    """Keeps status reports that `publish_to` refused, and publishes them again on `republish()`."""

    def __init__(
        self,
        engine: AsyncEngine,
        publish_to: StatusSink,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        batch_size: int = 200,
    ) -> None:
        self._engine = engine
        self._publish_to = publish_to
        self._clock = clock
        self._batch_size = batch_size
        # The retry worker may drain from several wake-ups at once; one republishing per process is enough, and on
        # SQLite (no row locks) two would publish the same reports.
        self._republishing = asyncio.Lock()

    def sink(self) -> StatusSink:
        """The sink to publish through: `publish_to`, with this backlog behind it."""
        return _BackedUpStatusSink(self._publish_to, self)

    async def keep(self, report: NotificationStatusReport) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                sa.insert(unpublished_statuses).values(
                    notification_id=report.notification_id, report=report.model_dump_json(), kept_at=self._clock()
                )
            )

    async def pending(self) -> int:
        async with self._engine.connect() as connection:
            count = await connection.execute(sa.select(sa.func.count()).select_from(unpublished_statuses))
            return int(count.scalar_one())

    async def republish(self) -> int:
        """Publish kept reports, oldest first, until none is left or Kafka refuses one; returns how many went."""
        published = 0
        async with self._republishing:
            while True:
                sent, complete = await self._republish_batch()
                published += sent
                if not complete:
                    break
        if published:
            logger.info("published %d kept status events", published)
        return published

    async def _republish_batch(self) -> tuple[int, bool]:
        if self._engine.dialect.name == "sqlite":
            # SQLite means one instance and one pooled connection: hold no transaction while Kafka may take
            # its full timeout to refuse, or every ledger write of the service would wait for it.
            async with self._engine.connect() as connection:
                rows = await self._oldest(connection, lock=False)
            done = await self._publish(rows)
            if done:
                async with self._engine.begin() as connection:
                    await self._delete(connection, done)
        else:
            # Rows stay locked while they are published, so replicas do not publish the same report twice.
            async with self._engine.begin() as connection:
                rows = await self._oldest(connection, lock=True)
                done = await self._publish(rows)
                if done:
                    await self._delete(connection, done)
        return len(done), len(done) == len(rows) == self._batch_size

    async def _oldest(self, connection: AsyncConnection, *, lock: bool) -> list[tuple[int, str]]:
        query = (
            sa.select(unpublished_statuses.c.id, unpublished_statuses.c.report)
            .order_by(unpublished_statuses.c.id)
            .limit(self._batch_size)
        )
        if lock:
            query = query.with_for_update(skip_locked=True)
        return [(row.id, row.report) for row in await connection.execute(query)]

    async def _publish(self, rows: list[tuple[int, str]]) -> list[int]:
        """Publish `rows` together (the producer batches them); the ids of those Kafka took."""
        results = await asyncio.gather(
            *(self._publish_to.publish_status(_report(report)) for _, report in rows), return_exceptions=True
        )
        errors = [result for result in results if isinstance(result, BaseException)]
        if errors:
            logger.warning("%d kept status events still not published (%s)", len(errors), type(errors[0]).__name__)
        taken = zip(rows, results, strict=True)
        return [kept_id for (kept_id, _), result in taken if not isinstance(result, BaseException)]

    async def _delete(self, connection: AsyncConnection, ids: list[int]) -> None:
        await connection.execute(sa.delete(unpublished_statuses).where(unpublished_statuses.c.id.in_(ids)))


def _report(stored: str) -> NotificationStatusReport:
    return NotificationStatusReport.model_validate_json(stored)


class _BackedUpStatusSink:
    def __init__(self, publish_to: StatusSink, backlog: StatusBacklog) -> None:
        self._publish_to = publish_to
        self._backlog = backlog

    async def publish_status(self, report: NotificationStatusReport) -> None:
        try:
            await self._publish_to.publish_status(report)
        except Exception as error:
            logger.warning(
                "status event of notification %s not published (%s); kept to publish later",
                report.notification_id,
                type(error).__name__,
            )
            # If the database fails too, the original error goes up and the event is handled again.
            try:
                await self._backlog.keep(report)
            except Exception as keeping_failed:
                raise error from keeping_failed
