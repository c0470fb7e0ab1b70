"""The service's resources, opened when it starts and closed after the broker has stopped."""

from __future__ import annotations

from contextlib import AsyncExitStack

from notify_invitations.meeting_states import MeetingStateStore
from notify_invitations.service import InvitationService
from notify_invitations.settings import InvitationsSettings
from notify_shared.channels import FileOutbox
from notify_shared.delivery import Backoff, Dispatcher, StatusSink
from notify_shared.ledger import DeliveryLedger
from notify_shared.rendering import render_notification
from notify_shared.wiring import build_email_channel, build_sms_channel


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
        self, settings: InvitationsSettings, status_sink: StatusSink, backoff: Backoff | None = None
    ) -> None:
        ledger = await DeliveryLedger.connect(settings.database_url)
        self._resources.push_async_callback(ledger.aclose)
        states = MeetingStateStore(ledger.engine)
        await states.create_schema()
        outbox = FileOutbox(settings.outbox_dir)
        email = build_email_channel(settings, outbox)
        sms = build_sms_channel(settings, outbox)
        # The outbox may stand behind both channels; close each distinct channel once.
        closers = {id(channel): channel.aclose for channel in (email, sms, outbox)}
        for close in closers.values():
            self._resources.push_async_callback(close)
        dispatcher = Dispatcher(
            ledger=ledger,
            render=render_notification,
            email=email,
            sms=sms,
            status_sink=status_sink,
            email_sender=settings.email_sender,
            max_attempts=settings.delivery_attempts,
            backoff=backoff,
            concurrency=settings.concurrency,
        )
        self._service = InvitationService(
            states=states, dispatcher=dispatcher, organizer_email=settings.organizer_email
        )

    async def close(self) -> None:
        self._service = None
        await self._resources.aclose()
