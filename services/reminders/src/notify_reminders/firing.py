"""Sending what is due: claim due reminders, check they are still wanted, deliver them, settle them."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from notify_reminders.policy import ReminderPolicies
from notify_reminders.store import ReminderRow, ReminderState, ReminderStore, as_utc
from notify_reminders.timing import reason_not_to_fire
from notify_shared.concurrency import finish_all
from notify_shared.contract import Channel, Recipient, School
from notify_shared.contract.meetings import Meeting
from notify_shared.delivery import Dispatcher, NotificationInFlightError, PlannedNotification, SourceEventRef
from notify_shared.ids import service_source
from notify_shared.ledger import DeliveryStatus

logger = logging.getLogger(__name__)

TEMPLATE = "meeting_reminder"
SOURCE_TYPE = "meeting.reminder"
"""The `source_event_type` of a reminder's statuses; its `source_event_id` is the reminder id."""
SOURCE = service_source("reminders")
"""The `source_event_source` of a reminder's statuses: the service starts a reminder itself."""


@dataclass
class FiringReport:
    """What one firing round did, and how late each sent reminder was (seconds after its due time)."""

    sent: int = 0
    skipped: int = 0
    failed: int = 0
    lateness_seconds: list[float] = field(default_factory=list)


class ReminderRunner:
    """Fires due reminders. Safe to call from several tasks and several replicas at once."""

    def __init__(
        self,
        *,
        store: ReminderStore,
        dispatcher: Dispatcher,
        policies: ReminderPolicies,
        clock: Callable[[], datetime],
        owner: str,
        grace: timedelta,
        lease: timedelta = timedelta(minutes=5),
        batch_size: int = 500,
    ) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._policies = policies
        self._clock = clock
        self._owner = owner
        self._grace = grace
        self._lease = lease
        self._batch_size = batch_size
        self._lock = asyncio.Lock()

    async def drain(self) -> None:
        """Wait for a firing round in progress to finish, so a shutdown records what it sent."""
        async with self._lock:
            return

    async def fire_due(self) -> FiringReport:
        """Send everything due now, batch after batch, until nothing due is left."""
        report = FiringReport()
        async with self._lock:
            while batch := await self._store.claim_due(
                now=as_utc(self._clock()), owner=self._owner, lease=self._lease, limit=self._batch_size
            ):
                await finish_all(self._fire(row, report) for row in batch)
        if report.sent or report.skipped or report.failed:
            logger.info("fired reminders: %d sent, %d skipped, %d failed", report.sent, report.skipped, report.failed)
        return report

    async def _fire(self, row: ReminderRow, report: FiringReport) -> None:
        payload = json.loads(row.payload)
        school = School.model_validate(payload["school"])
        meeting = Meeting.model_validate(payload["meeting"])
        guardian = Recipient.model_validate(payload["guardian"])
        plan = PlannedNotification(
            source=SourceEventRef(source=SOURCE, id=row.reminder_id, type=SOURCE_TYPE),
            school=school,
            guardian=guardian,
            channel=Channel(row.channel),
            template=TEMPLATE,
            context={"school": school, "meeting": meeting, "guardian": guardian, "moved": payload["moved"]},
            not_after=meeting.starts_at,
        )
        now = as_utc(self._clock())
        reason = reason_not_to_fire(
            due_at=row.due_at,
            starts_at=row.starts_at,
            now=now,
            grace=self._grace,
            quiet=self._policies.quiet_hours_for(school.id),
            zone=school.zone,
        )
        if reason is not None:
            await self._dispatcher.settle_without_sending(plan, DeliveryStatus.SKIPPED, reason.value)
            await self._store.settle(row.reminder_id, ReminderState.SKIPPED, owner=self._owner, now=now, reason=reason)
            report.skipped += 1
            return
        try:
            (outcome,) = await self._dispatcher.dispatch([plan])
        except NotificationInFlightError:
            # Another replica is sending it right now (or died doing so): its lease decides; leave the row.
            return
        # `queued`: the delivery core's retry queue owns it now and the ledger records how it ends; for the
        # schedule it is handed over, like a sent one, and must not fire again.
        sent = outcome.status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.QUEUED)
        state = ReminderState.SENT if sent else ReminderState.FAILED
        if outcome.status is DeliveryStatus.SKIPPED:
            state = ReminderState.SKIPPED
        await self._store.settle(row.reminder_id, state, owner=self._owner, now=now, reason=outcome.reason)
        if sent:
            report.sent += 1
            report.lateness_seconds.append((now - row.due_at).total_seconds())
        else:
            report.failed += 1
