"""The service's resources, opened when it starts and closed after the broker has stopped."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import datetime

from notify_digest.intake import Intake
from notify_digest.retention import rules as retention_rules
from notify_digest.runner import DigestRunner
from notify_digest.service import DigestService
from notify_digest.settings import DigestSettings
from notify_digest.store import DigestStore
from notify_shared.alarm import Alarm
from notify_shared.delivery import Backoff, HandledSink, RetryWorker, StatusSink
from notify_shared.delivery.assembly import open_dispatcher, retry_worker_for
from notify_shared.ledger.liveness import SenderLiveness
from notify_shared.ledger.retention import ledger_rules
from notify_shared.observability import Readiness, ServiceMetrics
from notify_shared.retention.job import schedule_retention


class Runtime:
    """Holds what the handlers and the alarm need, between `open()` and `close()`."""

    def __init__(self) -> None:
        self._parts: tuple[DigestService, DigestRunner, DigestStore, Alarm] | None = None
        self._retries: RetryWorker | None = None
        self._resources = AsyncExitStack()

    def _get(self) -> tuple[DigestService, DigestRunner, DigestStore, Alarm]:
        if self._parts is None:
            raise RuntimeError("the digest service is not started")
        return self._parts

    @property
    def service(self) -> DigestService:
        return self._get()[0]

    @property
    def runner(self) -> DigestRunner:
        return self._get()[1]

    @property
    def store(self) -> DigestStore:
        return self._get()[2]

    @property
    def alarm(self) -> Alarm:
        return self._get()[3]

    async def open(
        self,
        settings: DigestSettings,
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
        store = DigestStore(ledger.engine, liveness=ledger.liveness)
        await store.create_schema()
        await schedule_retention(
            ledger.engine,
            [*ledger_rules(), *retention_rules()],
            settings,
            service="digest",
            resources=self._resources,
            registry=metrics.registry if metrics is not None else None,
            clock=clock,
        )
        runner = DigestRunner(
            store=store,
            dispatcher=dispatcher,
            settings=settings,
            clock=clock,
            owner=_owner(settings.instance_id, ledger.liveness),
        )
        alarm = Alarm(
            work=runner.run_due, next_due=store.next_notice_due, clock=clock, poll_interval=settings.poll_interval
        )
        service = DigestService(
            intake=Intake(store, settings, clock),
            dispatcher=dispatcher,
            on_schedule_changed=alarm.rearm,
            handled=handled,
        )
        self._parts = (service, runner, store, alarm)

    @property
    def retries(self) -> RetryWorker:
        if self._retries is None:
            raise RuntimeError("the digest service is not started")
        return self._retries

    async def stop_retries(self) -> None:
        """Stop the retry worker, if it was started (start-up may have failed before)."""
        if self._retries is not None:
            await self._retries.stop()

    async def close(self) -> None:
        if self._retries is not None:
            await self._retries.stop()
            self._retries = None
        if self._parts is not None:
            self._parts[3].stop()
            await self._parts[1].drain()
        self._parts = None
        await self._resources.aclose()


def _owner(instance_id: str | None, liveness: SenderLiveness | None) -> str:
    # The sender's heartbeat id (which starts with the instance id), so what a crashed replica claimed is free as
    # soon as its heartbeat stops; a bare instance id may come back after a restart and look alive.
    if liveness is not None:
        return liveness.sender_id
    return instance_id or f"{socket.gethostname()}:{os.getpid()}"
