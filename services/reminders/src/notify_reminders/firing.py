"""Sending what is due: claim due reminders, check they are still wanted, deliver them, settle them.

A firing round works in batches, not rows: each batch is claimed in one transaction, its skipped reminders are
recorded in the ledger together, its reminders to send are claimed in the ledger a chunk at a time and their
outcomes share group commits, and the whole batch is settled in one statement. Two lanes claim and send at once
(`work_in_lanes`), so reminders that fall due while a batch is being sent are claimed within a moment instead of
after the batch or at the next poll.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel

from notify_reminders.policy import ReminderPolicies
from notify_reminders.store import ReminderRow, ReminderState, ReminderStore, Settlement, as_utc
from notify_reminders.timing import SkipReason, reason_not_to_fire
from notify_shared.concurrency import work_in_lanes
from notify_shared.contract import Channel, Recipient, School
from notify_shared.contract.meetings import Meeting
from notify_shared.delivery import (
    DeliveryOutcome,
    Dispatcher,
    NotificationInFlightError,
    PlannedNotification,
    SourceEventRef,
)
from notify_shared.ids import service_source
from notify_shared.ledger import DeliveryStatus

logger = logging.getLogger(__name__)

_Model = TypeVar("_Model", bound=BaseModel)

TEMPLATE = "meeting_reminder"
SOURCE_TYPE = "meeting.reminder"
"""The `source_event_type` of a reminder's statuses; its `source_event_id` is the reminder id."""
SOURCE = service_source("reminders")
"""The `source_event_source` of a reminder's statuses: the service starts a reminder itself."""
LANES = 2
"""Batches claimed and sent at once by one firing round (see `work_in_lanes`)."""


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
        batch_size: int = 64,
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
        self._stopping = False

    async def drain(self) -> None:
        """Wait for a firing round in progress to finish, so a shutdown records what it sent."""
        # A round claims again as long as anything is due, which during a burst may be minutes: on shutdown it
        # finishes the batches it holds and claims no more.
        self._stopping = True
        async with self._lock:
            return

    async def fire_due(self) -> FiringReport:
        """Send everything due now, batch after batch, until nothing due is left."""
        report = FiringReport()

        async def fire(batch: Sequence[ReminderRow]) -> None:
            await self._fire_batch(batch, report)

        async with self._lock:
            await work_in_lanes(self._claim, fire, lanes=LANES)
        if report.sent or report.skipped or report.failed:
            logger.info("fired reminders: %d sent, %d skipped, %d failed", report.sent, report.skipped, report.failed)
        return report

    async def _claim(self) -> list[ReminderRow]:
        if self._stopping:
            return []
        return await self._store.claim_due(
            now=as_utc(self._clock()), owner=self._owner, lease=self._lease, limit=self._batch_size
        )

    async def _fire_batch(self, batch: Sequence[ReminderRow], report: FiringReport) -> None:
        now = as_utc(self._clock())
        plans = _Plans()
        to_send: list[tuple[ReminderRow, PlannedNotification]] = []
        to_skip: list[tuple[ReminderRow, PlannedNotification, SkipReason]] = []
        for row in batch:
            plan = plans.plan(row)
            reason = reason_not_to_fire(
                due_at=row.due_at,
                starts_at=row.starts_at,
                now=now,
                grace=self._grace,
                quiet=self._policies.quiet_hours_for(plan.school.id),
                zone=plan.school.zone,
            )
            if reason is None:
                to_send.append((row, plan))
            else:
                to_skip.append((row, plan, reason))
        settlements: list[Settlement] = []
        if to_skip:
            await self._dispatcher.settle_many_without_sending(
                [(plan, DeliveryStatus.SKIPPED, reason.value) for _, plan, reason in to_skip]
            )
            settlements += [
                Settlement(row.reminder_id, ReminderState.SKIPPED, reason.value) for row, _, reason in to_skip
            ]
            report.skipped += len(to_skip)
        if to_send:
            results = await self._dispatcher.dispatch_each([plan for _, plan in to_send])
            for (row, _), result in zip(to_send, results, strict=True):
                if isinstance(result, NotificationInFlightError):
                    # Another replica is sending it right now (or died doing so): its lease decides; leave the row.
                    continue
                settlement = _settlement(row, result)
                settlements.append(settlement)
                if settlement.state is ReminderState.SENT:
                    report.sent += 1
                    report.lateness_seconds.append((now - row.due_at).total_seconds())
                elif settlement.state is ReminderState.SKIPPED:
                    report.skipped += 1
                else:
                    report.failed += 1
        # Settled once the whole batch is delivered: a crash before this leaves its rows claimed, and whoever
        # claims them again finds their outcomes in the ledger and sends nothing twice.
        await self._store.settle_many(settlements, owner=self._owner, now=as_utc(self._clock()))


def _settlement(row: ReminderRow, outcome: DeliveryOutcome) -> Settlement:
    # `queued`: the delivery core's retry queue owns it now and the ledger records how it ends; for the schedule
    # it is handed over, like a sent one, and must not fire again.
    if outcome.status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.QUEUED):
        return Settlement(row.reminder_id, ReminderState.SENT, outcome.reason)
    if outcome.status is DeliveryStatus.SKIPPED:
        return Settlement(row.reminder_id, ReminderState.SKIPPED, outcome.reason)
    return Settlement(row.reminder_id, ReminderState.FAILED, outcome.reason)


class _Plans:
    """Turns a batch's rows into planned notifications. The guardians of one meeting share its school and meeting,
    so each distinct school and meeting in the batch is validated once, not once per guardian."""

    def __init__(self) -> None:
        self._schools: dict[str, School] = {}
        self._meetings: dict[str, Meeting] = {}

    def plan(self, row: ReminderRow) -> PlannedNotification:
        payload = json.loads(row.payload)
        school = _validated(self._schools, payload["school"], School)
        meeting = _validated(self._meetings, payload["meeting"], Meeting)
        guardian = Recipient.model_validate(payload["guardian"])
        return PlannedNotification(
            source=SourceEventRef(source=SOURCE, id=row.reminder_id, type=SOURCE_TYPE),
            school=school,
            guardian=guardian,
            channel=Channel(row.channel),
            template=TEMPLATE,
            context={"school": school, "meeting": meeting, "guardian": guardian, "moved": payload["moved"]},
            not_after=meeting.starts_at,
        )


def _validated(known: dict[str, _Model], data: object, model: type[_Model]) -> _Model:
    # Keyed by the data's canonical JSON: two reminders of a meeting stored before and after an update differ.
    key = json.dumps(data, sort_keys=True, separators=(",", ":"))
    found = known.get(key)
    if found is None:
        found = known[key] = model.model_validate(data)
    return found
