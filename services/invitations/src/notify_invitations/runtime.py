"""The service's resources, opened when it starts and closed after the broker has stopped."""

from __future__ import annotations

from contextlib import AsyncExitStack

from notify_invitations.meeting_states import MeetingStateStore
from notify_invitations.service import InvitationService
from notify_invitations.settings import InvitationsSettings
from notify_shared.delivery import Backoff, StatusSink
from notify_shared.delivery.assembly import open_dispatcher
from notify_shared.observability import Readiness, ServiceMetrics


class Runtime:
    """Holds what the handlers need; `service` is available between `open()` and `close()`."""

    def __init__(self) -> None:
        self._service: InvitationService | None = None
        self._resources = AsyncExitStack()

    @property
    def service(self) -> InvitationService:
        if self._service is None:
            raise RuntimeError("the invitations service is not started")
        return self._service

    async def open(
        self,
        settings: InvitationsSettings,
        status_sink: StatusSink,
        backoff: Backoff | None = None,
        *,
        metrics: ServiceMetrics | None = None,
        readiness: Readiness | None = None,
    ) -> None:
        ledger, dispatcher = await open_dispatcher(
            settings,
            status_sink=status_sink,
            resources=self._resources,
            concurrency=settings.concurrency,
            backoff=backoff,
            metrics=metrics,
            readiness=readiness,
        )
        states = MeetingStateStore(ledger.engine)
        await states.create_schema()
        self._service = InvitationService(
            states=states, dispatcher=dispatcher, organizer_email=settings.organizer_email
        )

    async def close(self) -> None:
        self._service = None
        await self._resources.aclose()
