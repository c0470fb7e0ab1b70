"""Sending what is due: debounced notices, and digests whose slot has passed.

Digests go in batches, not one by one: a batch is claimed in one transaction, its items are read in one query,
its ledger claims are taken a chunk at a time, its outcomes share group commits, and it is settled in one
transaction. Two lanes work at once (`work_in_lanes`), so the next batch is claimed and read while one is sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from notify_digest.intake import ABSENCE_NOTICE, MESSAGE_NOTICE, absence_notice_channel
from notify_digest.settings import DigestSettings
from notify_digest.slots import latest_daily_slot, latest_weekly_slot
from notify_digest.store import (
    ClaimedDigest,
    ClaimedNotice,
    DigestSettlement,
    DigestStore,
    ItemRow,
    State,
    as_utc,
    stable_id,
)
from notify_shared.concurrency import finish_all, work_in_lanes
from notify_shared.contract import Channel, Lesson, PostedMessage, Pupil, Recipient, School
from notify_shared.delivery import (
    Dispatcher,
    NotificationInFlightError,
    PlannedNotification,
    SourceEventRef,
)
from notify_shared.ids import service_source
from notify_shared.ledger import DeliveryStatus
from notify_shared.rendering.digest_context import DigestAbsence, DigestMessage, DigestSection, lessons_in_order

logger = logging.getLogger(__name__)

DIGEST = "digest"
DIGEST_SOURCE_TYPE = "digest.due"
NOTICE_SOURCE_TYPE = "notice.due"
SOURCE = service_source("digest")
"""The source of notices and digests in the ledger: the service sends them itself, under ids it derived."""
LANES = 2
"""Batches of digests claimed and sent at once by one run: one lane claims and reads while another's batch is sent."""


@dataclass
class RunReport:
    notices_sent: int = 0
    digests_sent: int = 0
    digests_failed: int = 0
    items_assigned: int = 0


def build_sections(rows: Sequence[ItemRow]) -> tuple[tuple[DigestSection, ...], int, int]:
    """Group a digest's items by child or class, merging one pupil's absences on one day into one line."""
    messages: dict[str, list[DigestMessage]] = defaultdict(list)
    absences: dict[str, dict[tuple[str, str], DigestAbsence]] = defaultdict(dict)
    order: list[str] = []
    for row in rows:
        if row.section not in order:
            order.append(row.section)
        payload = json.loads(row.payload)
        if row.kind == "message":
            messages[row.section].append(
                DigestMessage(
                    subject=payload["subject"],
                    body=payload["body"],
                    author_name=payload["author_name"],
                    posted_at=datetime.fromisoformat(payload["posted_at"]),
                    urgent=payload["urgent"],
                    class_name=payload["class_name"],
                )
            )
            continue
        pupil = Pupil.model_validate(payload["pupil"])
        key = (pupil.pupil_id, payload["date"])
        lessons = tuple(Lesson.model_validate(lesson) for lesson in payload["lessons"])
        earlier = absences[row.section].get(key)
        if earlier is not None:
            # A whole-day absence (no lessons) covers every lesson of that day.
            lessons = () if not earlier.lessons or not lessons else lessons_in_order(earlier.lessons + lessons)
        absences[row.section][key] = DigestAbsence(
            pupil_first_name=pupil.first_name,
            class_name=pupil.class_name,
            date=date.fromisoformat(payload["date"]),
            lessons=lessons,
            reported_by_guardian=payload["reported_by_guardian"] and (earlier is None or earlier.reported_by_guardian),
        )
    sections = tuple(
        DigestSection(heading=name, messages=tuple(messages[name]), absences=tuple(absences[name].values()))
        for name in order
    )
    return sections, sum(len(m) for m in messages.values()), sum(len(a) for a in absences.values())


class DigestRunner:
    """Fires due notices and digests. Safe to call from several tasks and several replicas at once."""

    def __init__(
        self,
        *,
        store: DigestStore,
        dispatcher: Dispatcher,
        settings: DigestSettings,
        clock: Callable[[], datetime],
        owner: str,
    ) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._settings = settings
        self._clock = clock
        self._owner = owner
        self._lock = asyncio.Lock()
        self._stopping = False

    def _now(self) -> datetime:
        return as_utc(self._clock())

    async def drain(self) -> None:
        """Wait for a run in progress to finish, so a shutdown records what it sent."""
        # A round claims again as long as anything is due, which during a burst may be minutes: on shutdown it
        # finishes the batches it holds and claims no more.
        self._stopping = True
        async with self._lock:
            return

    async def run_due(self) -> RunReport:
        report = RunReport()
        async with self._lock:
            await self._send_notices(report)
            await self._assign_digests(report)
            await self._send_digests(report)
        return report

    # --- notices ---

    async def _send_notices(self, report: RunReport) -> None:
        settings = self._settings
        while batch := await self._store.claim_notices(
            now=self._now(), owner=self._owner, lease=settings.claim_lease, limit=settings.batch_size
        ):
            await finish_all(self._send_notice(notice, report) for notice in batch)

    async def _send_notice(self, notice: ClaimedNotice, report: RunReport) -> None:
        school = School.model_validate_json(notice.school)
        guardian = Recipient.model_validate_json(notice.guardian)
        source = SourceEventRef(source=SOURCE, id=notice.notice_id, type=NOTICE_SOURCE_TYPE)
        payload = json.loads(notice.payload)
        if notice.kind == "absence":
            context: dict[str, object] = {
                "school": school,
                "guardian": guardian,
                "pupil": Pupil.model_validate(payload["pupil"]),
                "date": date.fromisoformat(payload["date"]),
                "lessons": tuple(Lesson.model_validate(lesson) for lesson in payload["lessons"]),
            }
            plans = [
                PlannedNotification(source, school, guardian, absence_notice_channel(guardian), ABSENCE_NOTICE, context)
            ]
        else:
            message = PostedMessage.model_validate(payload)
            context = {"school": school, "guardian": guardian, "message": message, "urgent": message.urgent}
            plans = [
                PlannedNotification(source, school, guardian, channel, MESSAGE_NOTICE, context)
                for channel in guardian.channels
            ]
        try:
            await self._dispatcher.dispatch(plans)
        except NotificationInFlightError:
            return  # another replica holds it; its lease decides
        await self._store.settle_notice(notice.notice_id, State.SENT, owner=self._owner, now=self._now())
        report.notices_sent += 1

    # --- digests ---

    def _slot(self, period: str, zone: ZoneInfo, now: datetime) -> datetime:
        settings = self._settings
        if period == "daily":
            return latest_daily_slot(now, settings.daily_at, zone)
        return latest_weekly_slot(now, settings.weekly_day, settings.weekly_at, zone)

    async def _assign_digests(self, report: RunReport) -> None:
        now = self._now()
        for school_id, timezone, period in await self._store.waiting_schools():
            slot = self._slot(period, ZoneInfo(timezone), now)
            report.items_assigned += await self._store.assign(school_id=school_id, period=period, slot_at=slot, now=now)

    async def _send_digests(self, report: RunReport) -> None:
        settings = self._settings

        async def claim() -> list[ClaimedDigest]:
            if self._stopping:
                return []
            return await self._store.claim_digests(
                now=self._now(), owner=self._owner, lease=settings.claim_lease, limit=settings.batch_size
            )

        async def send(batch: Sequence[ClaimedDigest]) -> None:
            await self._send_digest_batch(batch, report)

        await work_in_lanes(claim, send, lanes=LANES)

    async def _send_digest_batch(self, batch: Sequence[ClaimedDigest], report: RunReport) -> None:
        """A batch of digests together: their items read in one query, their ledger claims a chunk at a time, their
        outcomes in shared group commits, and the batch settled in one transaction."""
        items_by_digest = await self._store.items_of_many([digest.digest_id for digest in batch])
        now = self._now()
        schools: dict[str, School] = {}
        settlements: list[DigestSettlement] = []
        postponed: list[tuple[str, datetime]] = []
        to_send: list[tuple[ClaimedDigest, PlannedNotification]] = []
        for digest in batch:
            rows = items_by_digest.get(digest.digest_id)
            if not rows:
                settlements.append(DigestSettlement(digest.digest_id, State.SKIPPED, "empty"))
                continue
            school = schools.get(rows[-1].school)
            if school is None:
                school = schools[rows[-1].school] = School.model_validate_json(rows[-1].school)
            until = self._end_of_quiet_hours(school, now)
            if until is not None:
                postponed.append((digest.digest_id, until))
                continue
            to_send.append((digest, self._plan(digest, rows, school)))
        if to_send:
            results = await self._dispatcher.dispatch_each([plan for _, plan in to_send])
            for (digest, _), result in zip(to_send, results, strict=True):
                if isinstance(result, NotificationInFlightError):
                    continue  # another replica holds it; its lease decides
                # `queued`: handed to the delivery core's retry queue, which owns it now (the ledger has its outcome).
                sent = result.status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.QUEUED)
                settlements.append(
                    DigestSettlement(digest.digest_id, State.SENT if sent else State.FAILED, result.reason)
                )
                if sent:
                    report.digests_sent += 1
                else:
                    report.digests_failed += 1
        # Settled once the whole batch is delivered: a crash before this leaves its digests claimed, and whoever
        # claims them again finds their outcomes in the ledger and sends nothing twice.
        await self._store.finish_digests(settlements, postponed, owner=self._owner, now=self._now())

    def _end_of_quiet_hours(self, school: School, now: datetime) -> datetime | None:
        """When the quiet hours the school is in now end, or None outside them."""
        quiet = self._settings.quiet_hours
        local_now = now.astimezone(school.zone)
        if not quiet.contains(local_now.time()):
            return None
        end_day = local_now.date() if local_now.time() < quiet.end else local_now.date() + timedelta(days=1)
        return datetime.combine(end_day, quiet.end).replace(tzinfo=school.zone).astimezone(UTC)

    @staticmethod
    def _plan(digest: ClaimedDigest, rows: Sequence[ItemRow], school: School) -> PlannedNotification:
        guardian = Recipient.model_validate_json(rows[-1].guardian)  # the latest contact details
        sections, message_count, absence_count = build_sections(rows)
        context: dict[str, object] = {
            "school": school,
            "guardian": guardian,
            "period": digest.period,
            "period_start": min(row.sort_at for row in rows).astimezone(school.zone).date(),
            "period_end": digest.slot_at.astimezone(school.zone).date(),
            "sections": sections,
            "message_count": message_count,
            "absence_count": absence_count,
        }
        # The ledger keys by a short hash of the digest id, which can be longer than an event id may be.
        source = SourceEventRef(source=SOURCE, id=stable_id(digest.digest_id), type=DIGEST_SOURCE_TYPE)
        return PlannedNotification(source, school, guardian, Channel.EMAIL, DIGEST, context)
