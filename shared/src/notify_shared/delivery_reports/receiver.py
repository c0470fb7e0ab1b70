"""Applying delivery reports: the ledger moves `sent` → `delivered` / `failed` / `bounced`, and the new status is
published on `notification.status` and counted in `notify_notifications_total`.

Each service's database knows only the notifications that service sent, so each service receives the reports for
its own messages (the SMS provider is given that service's URL, see `SMS_STATUS_CALLBACK_URL`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.schema import CreateIndex

from notify_shared.contract import Channel, NotificationStatusReport
from notify_shared.delivery.status_backlog import StatusBacklog
from notify_shared.delivery.status_sink import StatusSink
from notify_shared.delivery_reports.formats import ProviderReport
from notify_shared.ledger.ledger import DeliveryLedger
from notify_shared.ledger.provider_reports import ReportOutcome
from notify_shared.ledger.records import DeliveryRecord
from notify_shared.ledger.tables import deliveries
from notify_shared.observability.metrics import ServiceMetrics

logger = logging.getLogger(__name__)

_PROVIDER_INDEX = "ix_deliveries_provider_message_id"
# Provider references are logged only when they plainly are ids (or one of our own Message-IDs, whose left part
# is a notification id); anything else, an address above all, is logged as a digest.
_LOGGABLE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}|<[0-9a-f]{26}@[A-Za-z0-9.-]{1,100}>")


class ReceiverNotReadyError(RuntimeError):
    """A report came before the service opened its database (or after it closed it)."""


class DeliveryReportReceiver:
    """Applies reports to the service's ledger; open with `open()` at start-up, `close()` at shutdown.

    It keeps its own small connection pool to the service's database, so a burst of reports never waits for
    the connections the Kafka handlers use.
    """

    def __init__(
        self,
        *,
        database_url: str,
        status_sink: StatusSink,
        metrics: ServiceMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._database_url = database_url
        self._publish_to = status_sink
        self._status_sink = status_sink
        self._metrics = metrics
        self._clock = clock
        self._ledger: DeliveryLedger | None = None

    async def open(self) -> None:
        ledger = await DeliveryLedger.connect(self._database_url)
        try:
            await ensure_provider_index(ledger.engine)
        except BaseException:
            await ledger.aclose()
            raise
        self._ledger = ledger
        # The ledger has the new status before Kafka is asked: a status event Kafka refuses is kept in the same
        # database and published by the service's retry worker, as the dispatcher's are. Answering the provider
        # 500 instead would not help: its resent report finds the status applied already and publishes nothing.
        self._status_sink = StatusBacklog(ledger.engine, self._publish_to, clock=self._clock).sink()

    async def close(self) -> None:
        ledger, self._ledger = self._ledger, None
        if ledger is not None:
            await ledger.aclose()

    async def receive(self, report: ProviderReport) -> ReportOutcome:
        """Apply `report`; publish and count the new status when it changed the notification."""
        if self._ledger is None:
            raise ReceiverNotReadyError("delivery reports are not open yet")
        reference = loggable_id(report.provider_message_id or report.notification_id)
        if report.status is None:
            logger.debug("delivery report from %s for %s: a step on the way, nothing to do", report.provider, reference)
            return ReportOutcome.IGNORED
        result = await self._ledger.apply_provider_report(
            report.provider,
            report.provider_message_id,
            report.status,
            report.reason,
            notification_id=report.notification_id,
        )
        delivery = result.delivery
        match result.outcome:
            case ReportOutcome.APPLIED:
                assert delivery is not None
                logger.info(
                    "delivery report from %s: notification %s is %s (%s)",
                    report.provider,
                    delivery.notification_id,
                    delivery.status.value,
                    delivery.reason or "-",
                )
                await self._publish(delivery)
            case ReportOutcome.UNKNOWN:
                logger.info("delivery report from %s for %s: no such notification here", report.provider, reference)
            case _:
                assert delivery is not None
                logger.info(
                    "delivery report from %s (%s) for notification %s: %s, it stays %s",
                    report.provider,
                    report.status.value,
                    delivery.notification_id,
                    result.outcome.value,
                    delivery.status.value,
                )
        return result.outcome

    async def _publish(self, delivery: DeliveryRecord) -> None:
        await self._status_sink.publish_status(
            NotificationStatusReport(
                notification_id=delivery.notification_id,
                source_event_source=delivery.source_event_source,
                source_event_id=delivery.source_event_id,
                source_event_type=delivery.source_event_type,
                school_id=delivery.school_id,
                guardian_id=delivery.guardian_id,
                channel=Channel(delivery.channel),
                template=delivery.template,
                language=delivery.language,
                status=delivery.status,
                reason=delivery.reason,
                attempt=delivery.attempts,
                sms_segments=delivery.segments,
                occurred_at=self._clock(),
            )
        )
        if self._metrics is not None:
            self._metrics.notification_recorded(
                channel=delivery.channel,
                template=delivery.template,
                language=delivery.language,
                status=delivery.status.value,
                event_time=None,
                accepted_at=None,
            )


async def ensure_provider_index(engine: AsyncEngine) -> None:
    """Create the index reports are looked up by in a database whose ledger tables predate it."""
    index = next(index for index in deliveries.indexes if index.name == _PROVIDER_INDEX)
    async with engine.begin() as connection:
        await connection.execute(CreateIndex(index, if_not_exists=True))


def loggable_id(value: str | None) -> str:
    """`value` when it is plainly an id (or a Message-ID), else a digest: what a report names may be anything."""
    if value is None:
        return "-"
    if _LOGGABLE_ID.fullmatch(value):
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]
