"""The service's resources, opened when it starts and closed after the broker has stopped."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime

from notify_invitations.meeting_states import MeetingStateStore
from notify_invitations.retention import rules as retention_rules
from notify_invitations.service import InvitationService, answer_links
from notify_invitations.settings import InvitationsSettings
from notify_shared.answer_links import AnswerLinkKeys
from notify_shared.delivery import Backoff, HandledSink, RetryWorker, StatusSink
from notify_shared.delivery.assembly import open_dispatcher, retry_worker_for
from notify_shared.ledger.retention import ledger_rules
from notify_shared.observability import Readiness, ServiceMetrics
from notify_shared.retention.job import schedule_retention


class Runtime:
    """Holds what the handlers need; `service` is available between `open()` and `close()`."""

    def __init__(self) -> None:
        self._service: InvitationService | None = None
        self._retries: RetryWorker | None = None
        self._resources = AsyncExitStack()

    @property
    def service(self) -> InvitationService:
        if self._service is None:
            raise RuntimeError("the invitations service is not started")
        return self._service

    @property
    def retries(self) -> RetryWorker:
        if self._retries is None:
            raise RuntimeError("the invitations service is not started")
        return self._retries

    async def open(
        self,
        settings: InvitationsSettings,
        status_sink: StatusSink,
        backoff: Backoff | None = None,
        *,
        handled: HandledSink | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: ServiceMetrics | None = None,
        readiness: Readiness | None = None,
    ) -> None:
        ledger, dispatcher = await open_dispatcher(
            settings,
            status_sink=status_sink,
            resources=self._resources,
            concurrency=settings.concurrency,
            backoff=backoff,
            clock=clock,
            metrics=metrics,
            readiness=readiness,
        )
        self._retries = retry_worker_for(settings, dispatcher, clock=clock)
        states = MeetingStateStore(ledger.engine)
        await states.create_schema()
        await schedule_retention(
            ledger.engine,
            [*ledger_rules(), *retention_rules()],
            settings,
            service="invitations",
            resources=self._resources,
            registry=metrics.registry if metrics is not None else None,
            clock=clock,
        )
        links = None
        if settings.answer_links_enabled and settings.public_base_url is not None:
            links = answer_links(AnswerLinkKeys.from_settings(settings), settings.public_base_url)
        self._service = InvitationService(
            states=states,
            dispatcher=dispatcher,
            organizer_email=settings.organizer_email,
            quiet_hours=settings.quiet_hours,
            answer_url=links,
            handled=handled,
            clock=clock,
        )

    async def stop_retries(self) -> None:
        """Stop the retry worker, if it was started (start-up may have failed before)."""
        if self._retries is not None:
            await self._retries.stop()

    async def close(self) -> None:
        if self._retries is not None:
            await self._retries.stop()
        self._service = self._retries = None
        await self._resources.aclose()
