"""The service's resources, opened when it starts and closed after the broker has stopped."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime

from notify_reminders.answers import AnswerApplier
from notify_reminders.firing import ReminderRunner
from notify_reminders.retention import rules as retention_rules
from notify_reminders.scheduling import Scheduler
from notify_reminders.service import ReminderService
from notify_reminders.settings import RemindersSettings
from notify_reminders.store import ReminderStore
from notify_shared.alarm import Alarm
from notify_shared.contract import GuardianAnswer
from notify_shared.delivery import Backoff, HandledSink, RetryWorker, StatusSink
from notify_shared.delivery.assembly import open_dispatcher, retry_worker_for
from notify_shared.ledger.liveness import SenderLiveness
from notify_shared.ledger.retention import ledger_rules
from notify_shared.observability import Readiness, ServiceMetrics
from notify_shared.retention.job import schedule_retention


class Runtime:
    """Holds what the handlers and the alarm need, between `open()` and `close()`."""

    def __init__(self) -> None:
        self._service: ReminderService | None = None
        self._alarm: Alarm | None = None
        self._retries: RetryWorker | None = None
        self._runner: ReminderRunner | None = None
        self._store: ReminderStore | None = None
        self._answers: AnswerApplier | None = None
        self._clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._resources = AsyncExitStack()

    @property
    def service(self) -> ReminderService:
        if self._service is None:
            raise RuntimeError("the reminders service is not started")
        return self._service

    @property
    def runner(self) -> ReminderRunner:
        if self._runner is None:
            raise RuntimeError("the reminders service is not started")
        return self._runner

    @property
    def alarm(self) -> Alarm:
        if self._alarm is None:
            raise RuntimeError("the reminders service is not started")
        return self._alarm

    @property
    def retries(self) -> RetryWorker:
        if self._retries is None:
            raise RuntimeError("the reminders service is not started")
        return self._retries

    @property
    def store(self) -> ReminderStore:
        if self._store is None:
            raise RuntimeError("the reminders service is not started")
        return self._store

    async def open(
        self,
        settings: RemindersSettings,
        *,
        status_sink: StatusSink,
        clock: Callable[[], datetime],
        handled: HandledSink | None = None,
        backoff: Backoff | None = None,
        metrics: ServiceMetrics | None = None,
        readiness: Readiness | None = None,
    ) -> None:
        ledger, dispatcher = await open_dispatcher(
            settings,
            status_sink=status_sink,
            resources=self._resources,
            backoff=backoff,
            clock=clock,
            metrics=metrics,
            readiness=readiness,
            instance_name=settings.instance_id,
        )
        self._retries = retry_worker_for(settings, dispatcher, clock=clock, instance_id=settings.instance_id)
        self._store = store = ReminderStore(ledger.engine, liveness=ledger.liveness)
        await store.create_schema()
        await schedule_retention(
            ledger.engine,
            [*ledger_rules(), *retention_rules()],
            settings,
            service="reminders",
            resources=self._resources,
            registry=metrics.registry if metrics is not None else None,
            clock=clock,
        )
        self._runner = runner = ReminderRunner(
            store=store,
            dispatcher=dispatcher,
            policies=settings.policies,
            clock=clock,
            owner=_owner(settings.instance_id, ledger.liveness),
            grace=settings.grace_period,
            lease=settings.claim_lease,
            batch_size=settings.batch_size,
        )
        self._alarm = alarm = Alarm(
            work=runner.fire_due, next_due=store.next_due, clock=clock, poll_interval=settings.poll_interval
        )
        self._answers = AnswerApplier(ledger.engine)
        await self._answers.create_schema()
        self._clock = clock
        self._service = ReminderService(
            scheduler=Scheduler(ledger.engine, settings.policies, clock),
            dispatcher=dispatcher,
            on_schedule_changed=alarm.rearm,
            handled=handled,
        )

    async def apply_answer(self, answer: GuardianAnswer) -> None:
        """A guardian's answer (notify_reminders.answers); the alarm is re-armed for reminders it brought back."""
        if self._answers is None:
            raise RuntimeError("the reminders service is not started")
        if await self._answers.apply(answer, now=self._clock()):
            await self.alarm.rearm()

    async def stop_retries(self) -> None:
        """Stop the retry worker, if it was started (start-up may have failed before)."""
        if self._retries is not None:
            await self._retries.stop()

    async def close(self) -> None:
        if self._retries is not None:
            await self._retries.stop()
            self._retries = None
        if self._alarm is not None:
            self._alarm.stop()
        if self._runner is not None:
            await self._runner.drain()
        self._service = self._alarm = self._runner = self._store = None
        await self._resources.aclose()


def _owner(instance_id: str | None, liveness: SenderLiveness | None) -> str:
    # The sender's heartbeat id (which starts with the instance id), so what a crashed replica claimed is free as
    # soon as its heartbeat stops; a bare instance id may come back after a restart and look alive.
    if liveness is not None:
        return liveness.sender_id
    return instance_id or f"{socket.gethostname()}:{os.getpid()}"
