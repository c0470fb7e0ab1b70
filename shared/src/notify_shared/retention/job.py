"""Applying the retention rules: on a schedule in every service, and on request through `notify purge` and
`notify erase`.

Deletes go in small batches, each its own transaction, so a first purge of a large table never holds locks for
long. Replicas may purge at the same time: on PostgreSQL each batch skips rows another replica has locked, and a
row deleted twice is simply not found the second time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from notify_shared.retention.rules import RetentionRule
from notify_shared.retention.windows import RetentionWindows
from notify_shared.settings import ServiceSettings

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000


@dataclass(frozen=True)
class RuleCount:
    """How many rows one rule deleted (or, in a dry run, would delete)."""

    rule: str
    table: str
    rows: int


class Retention:
    """The rules whose tables exist in one database, applied there."""

    def __init__(
        self,
        engine: AsyncEngine,
        rules: Sequence[RetentionRule],
        windows: RetentionWindows,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self._engine = engine
        self._rules = list(rules)
        self._windows = windows
        self._clock = clock
        self._batch_size = batch_size

    async def rules_here(self) -> list[RetentionRule]:
        """The rules of tables this database has: one CLI serves every service's database."""
        async with self._engine.connect() as connection:
            tables = set(await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
        return [rule for rule in self._rules if rule.table.name in tables]

    async def purge(self, *, dry_run: bool = False) -> list[RuleCount]:
        """Delete what every rule lets go now; with `dry_run`, only count it."""
        now = self._clock().astimezone(UTC)
        counts = []
        for rule in await self.rules_here():
            condition = rule.expired(now - self._windows.of(rule.window))
            rows = await self._count(rule.table, condition) if dry_run else await self._delete(rule.table, condition)
            counts.append(RuleCount(rule.name, rule.table.name, rows))
        return counts

    async def erase(self, school_id: str, guardian_id: str, *, dry_run: bool = False) -> list[RuleCount]:
        """Delete everything kept about one guardian of one school, including what is still scheduled for them."""
        counts = []
        for rule in await self.rules_here():
            if rule.of_guardian is None:
                continue
            condition = rule.of_guardian(school_id, guardian_id)
            rows = await self._count(rule.table, condition) if dry_run else await self._delete(rule.table, condition)
            counts.append(RuleCount(rule.name, rule.table.name, rows))
        return counts

    async def _count(self, table: sa.Table, condition: sa.ColumnElement[bool]) -> int:
        async with self._engine.connect() as connection:
            counted = await connection.execute(sa.select(sa.func.count()).select_from(table).where(condition))
            return int(counted.scalar_one())

    async def _delete(self, table: sa.Table, condition: sa.ColumnElement[bool]) -> int:
        deleted = 0
        while True:
            async with self._engine.begin() as connection:
                batch = await self._delete_batch(connection, table, condition)
            deleted += batch
            if batch < self._batch_size:
                return deleted

    async def _delete_batch(
        self, connection: AsyncConnection, table: sa.Table, condition: sa.ColumnElement[bool]
    ) -> int:
        key = list(table.primary_key.columns)
        chosen = sa.select(*key).where(condition).limit(self._batch_size)
        if connection.dialect.name == "postgresql":
            chosen = chosen.with_for_update(skip_locked=True)
        result = await connection.execute(sa.delete(table).where(sa.tuple_(*key).in_(chosen)))
        return int(result.rowcount)


class RetentionSchedule:
    """Runs `Retention.purge` every `interval` in a service, counting what went in `notify_retention_purged`."""

    def __init__(
        self,
        retention: Retention,
        *,
        service: str,
        interval: timedelta,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._retention = retention
        self._service = service
        self._interval = interval
        self._purged = (
            Counter(
                "notify_retention_purged",
                "Rows deleted by the retention rules, by rule (docs/privacy.md).",
                ["service", "rule"],
                registry=registry,
            )
            if registry is not None
            else None
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name=f"retention {self._service}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run_once(self) -> list[RuleCount]:
        counts = await self._retention.purge()
        for count in counts:
            if self._purged is not None:
                self._purged.labels(self._service, count.rule).inc(count.rows)
            if count.rows:
                logger.info("retention: %d rows deleted by rule %s", count.rows, count.rule)
        return counts

    async def _run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                # The next run tries again; a database away for a while must not end the schedule.
                logger.exception("retention run failed; trying again in %s", self._interval)
            await asyncio.sleep(self._interval.total_seconds())


async def schedule_retention(
    engine: AsyncEngine,
    rules: Sequence[RetentionRule],
    settings: ServiceSettings,
    *,
    service: str,
    resources: AsyncExitStack,
    registry: CollectorRegistry | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RetentionSchedule:
    """Start applying `rules` every RETENTION_INTERVAL in a service; `resources` stops it on the way out."""
    retention = Retention(engine, rules, settings.retention_windows, clock=clock)
    schedule = RetentionSchedule(retention, service=service, interval=settings.retention_interval, registry=registry)
    schedule.start()
    resources.push_async_callback(schedule.stop)
    return schedule
