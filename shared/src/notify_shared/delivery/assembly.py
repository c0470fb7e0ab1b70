"""Opening the delivery core from a service's settings: ledger, channels, dispatcher and retry worker."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime

from notify_shared.channels import FileOutbox
from notify_shared.delivery.deadlines import Deadlines
from notify_shared.delivery.dispatcher import Dispatcher
from notify_shared.delivery.reporting import DeliveryMetrics
from notify_shared.delivery.retry import Backoff
from notify_shared.delivery.retry_worker import RetryWorker
from notify_shared.delivery.status_sink import StatusSink
from notify_shared.ledger import DeliveryLedger, RetryQueue
from notify_shared.ledger.liveness import SenderLiveness, new_sender_id
from notify_shared.observability.http import Readiness, database_check
from notify_shared.rendering.render_once import RenderOnce
from notify_shared.settings import ServiceSettings
from notify_shared.wiring import build_email_channel, build_sms_channel


async def open_dispatcher(
    settings: ServiceSettings,
    *,
    status_sink: StatusSink,
    resources: AsyncExitStack,
    concurrency: int = 16,
    backoff: Backoff | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    metrics: DeliveryMetrics | None = None,
    readiness: Readiness | None = None,
    instance_name: str | None = None,
) -> tuple[DeliveryLedger, Dispatcher]:
    """Connect the ledger and the channels named by `settings`; `resources` closes them in reverse order.

    With `metrics`, the dispatcher reports every outcome there; with `readiness`, `/readyz` checks the ledger's
    database. `instance_name` (e.g. a pod name) starts the id under which this process claims notifications.
    """
    ledger = await DeliveryLedger.connect(
        settings.database_url, clock=clock, lease_seconds=settings.delivery_lease.total_seconds()
    )
    resources.push_async_callback(ledger.aclose)
    liveness = SenderLiveness(
        ledger.engine, sender_id=new_sender_id(instance_name), timeout=settings.delivery_sender_timeout
    )
    await liveness.start()
    # Closed in reverse order: the heartbeat stops (and the sender deregisters) before the ledger closes.
    resources.push_async_callback(liveness.stop)
    ledger.liveness = liveness
    if readiness is not None:
        readiness.add_check("database", database_check(ledger.engine))
        resources.callback(readiness.remove_check, "database")
    outbox = FileOutbox(settings.outbox_dir)
    email = build_email_channel(settings, outbox)
    sms = build_sms_channel(settings, outbox, clock=clock)
    # The outbox may stand behind both channels; close each distinct channel once.
    for close in {id(channel): channel.aclose for channel in (email, sms, outbox)}.values():
        resources.push_async_callback(close)
    dispatcher = Dispatcher(
        ledger=ledger,
        # The guardians of one meeting share one rendering; each gets their own name and link filled in.
        render=RenderOnce(),
        email=email,
        sms=sms,
        status_sink=status_sink,
        email_sender=settings.email_sender,
        max_attempts=settings.delivery_attempts,
        backoff=backoff
        or Backoff(
            base_seconds=settings.delivery_retry_base.total_seconds(),
            max_seconds=settings.delivery_retry_max.total_seconds(),
        ),
        deadlines=Deadlines(email=settings.email_deadline, sms=settings.sms_deadline),
        clock=clock,
        concurrency=concurrency,
        metrics=metrics,
        retry_queue=RetryQueue(ledger.engine, clock=clock, lease=settings.delivery_lease, liveness=liveness),
    )
    return ledger, dispatcher


def retry_worker_for(
    settings: ServiceSettings,
    dispatcher: Dispatcher,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    instance_id: str | None = None,
) -> RetryWorker:
    """The worker that sends the dispatcher's queued retries; start it once the broker is up."""
    liveness = dispatcher.ledger.liveness
    # Under the sender's heartbeat id when there is one, so a crash frees its retries as soon as the heartbeat
    # stops; an instance id (a pod name) may come back after a restart, so it is only the fallback.
    owner = liveness.sender_id if liveness is not None else instance_id or f"{socket.gethostname()}-{os.getpid()}"
    return RetryWorker(
        dispatcher,
        owner=owner,
        clock=clock,
        poll_interval=settings.delivery_retry_poll_interval,
    )
