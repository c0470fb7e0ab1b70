"""Fault injection for the reminders and digest services: kill -9 and a broker restart, as the invitations face.

Each service is run as real processes against the real broker, and something is broken on purpose:

- kill -9 while the service is held in the middle of an event (its SQLite database hung by another writer long
  enough for the Kafka client's automatic commit to have fired); then kill -9 twice more while it sends;
- the broker stopped while both services are sending (one broker for both: starting one is the costly part),
  and started again.

The reminders are tested in two batches: meetings whose reminders are due tomorrow for the held event (every one of
their reminders must be in the schedule afterwards), then meetings whose reminders fall due 20 s after they are
published, for the kills while sending. The digest is sent messages for guardians who want each one at once.

Then every planned notification must have been delivered exactly once (or ended with a reason), from what the
sinks accepted and what the delivery ledger says. The first kill is the one a service that commits its offset
before doing the work cannot survive: the event it was holding is never read again, and what it meant is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from notify_digest.intake import MESSAGE_NOTICE
from notify_reminders.firing import SOURCE as REMINDERS_SOURCE
from notify_reminders.firing import TEMPLATE as REMINDER_TEMPLATE
from notify_reminders.store import ReminderState, ReminderStore, reminder_id_for, reminders
from notify_shared import samples
from notify_shared.contract import Channel, CloudEvent, DeliveryMode, MeetingCreated, MessagePosted, Recipient
from notify_shared.ledger import DeliveryKey, create_engine
from notify_shared.ledger.keys import notification_id_for
from notify_shared.testing.faults import (
    FaultySmtpSink,
    FaultyWebhookSink,
    HungSqliteDatabase,
    OwnKafkaBroker,
    ServiceProcess,
)
from notify_shared.testing.waiting import wait_until

from .fault_runs import EVENTS, GUARDIANS_PER_MEETING, Scenario, scenario_of

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

SIZE = max(40, EVENTS // 3)
"""Meetings or messages per run: 400 notifications by default, enough for kills mid-send, small enough for CI."""
NEVER_QUIET = {"start": "00:00", "end": "00:00"}
"""Quiet hours that never apply, so a run at any hour of the day sends at once."""
AUTO_COMMIT_WINDOW = 7.0
"""Seconds a held event is kept before the kill: longer than the Kafka client's automatic commit interval (5 s),
which is when a consumer that commits first would have given the held event up."""
IN_FLIGHT_PER_PROCESS = 16
"""Sends one process has in flight at most; after a kill -9 these may be sent again (see the invitations runs)."""


@dataclass
class RemindersScenario(Scenario):
    """Meetings announced two hours ago (so reminders may come within the hour) whose reminders fall due soon."""

    app = "notify_reminders.app:create_app"
    group_variable = "REMINDERS_CONSUMER_GROUP"
    database_file = "reminders.db"

    def service_env(self) -> dict[str, str]:
        rules = [{"channel": "email", "hours_before": 1}, {"channel": "sms", "hours_before": 1}]
        return {
            "REMINDERS_POLICIES": json.dumps({"rules": rules, "quiet_hours": NEVER_QUIET}),
            "REMINDERS_POLL_INTERVAL": "PT1S",
            "REMINDERS_CLAIM_LEASE": "PT5S",
            "REMINDERS_BATCH_SIZE": "100",
        }

    async def announce(self, batch: str, *, due_in: timedelta) -> list[MeetingCreated]:
        """SIZE meetings starting an hour after `due_in` from now, each guardian first invited two hours ago."""
        now = datetime.now(UTC)
        starts = now + timedelta(hours=1) + due_in
        events = [
            samples.meeting_created(
                meeting=samples.sample_meeting(
                    meeting_id=f"m-{self.name}-{batch}-{index}", starts_at=starts, ends_at=starts + timedelta(hours=1)
                ),
                recipients=list(guardians(index)),
                time=now,
            )
            for index in range(SIZE)
        ]
        # The reminders service learned of these guardians two hours ago; a reminder must come an hour after that.
        engine = create_engine(self.database_url)
        try:
            await ReminderStore(engine).create_schema()
            async with engine.begin() as connection:
                for event in events:
                    await ReminderStore.invited_at(
                        connection,
                        event.data.school.id,
                        event.data.meeting.meeting_id,
                        [guardian.guardian_id for guardian in event.data.recipients],
                        now - timedelta(hours=2),
                    )
        finally:
            await engine.dispose()
        return events

    async def pending_reminders(self) -> set[str]:
        """Reminder ids the schedule holds as pending: planned, not yet due."""
        engine = create_engine(self.database_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    sa.select(reminders.c.reminder_id).where(reminders.c.state == ReminderState.PENDING.value)
                )
                return {row.reminder_id for row in rows}
        finally:
            await engine.dispose()

    async def check_scheduled(self, events: list[MeetingCreated]) -> None:
        """Every reminder of `events` is in the schedule, pending; none is missing (its event was lost)."""
        wanted = {reminder_id for _, reminder_id, _, _ in planned_reminders(events)}

        async def all_scheduled() -> bool:
            return wanted <= await self.pending_reminders()

        with contextlib.suppress(AssertionError):
            await wait_until(all_scheduled, within=120, interval=0.5, what=f"{self.name}: every reminder scheduled")
        missing = wanted - await self.pending_reminders()
        assert not missing, f"{len(missing)} of {len(wanted)} reminders never scheduled: their events were lost"

    def expected_ids(self) -> set[str]:
        return {
            notification_id_for(
                DeliveryKey(school_id, REMINDERS_SOURCE, reminder_id, guardian_id, channel, REMINDER_TEMPLATE)
            )
            for school_id, reminder_id, guardian_id, channel in planned_reminders(self.events)
        }


def planned_reminders(events: list[MeetingCreated]) -> list[tuple[str, str, str, str]]:
    """(school id, reminder id, guardian id, channel) of each reminder the events plan: one per guardian and
    channel."""
    return [
        (
            event.data.school.id,
            reminder_id_for(
                event.data.school.id,
                event.data.meeting.meeting_id,
                guardian.guardian_id,
                f"{channel.value}-1h",
                event.data.meeting.starts_at,
            ),
            guardian.guardian_id,
            channel.value,
        )
        for event in events
        for guardian in event.data.recipients
        for channel in guardian.channels
    ]


@dataclass
class DigestScenario(Scenario):
    """Class messages to guardians who want each one at once, by email and SMS."""

    app = "notify_digest.app:create_app"
    group_variable = "DIGEST_CONSUMER_GROUP"
    database_file = "digest.db"
    messages: list[MessagePosted] = field(default_factory=list)

    def service_env(self) -> dict[str, str]:
        return {
            "DIGEST_QUIET_HOURS": json.dumps(NEVER_QUIET),
            "DIGEST_POLL_INTERVAL": "PT1S",
            "DIGEST_CLAIM_LEASE": "PT5S",
        }

    def plan_messages(self) -> None:
        now = datetime.now(UTC)
        sample = samples.message_posted()
        for index in range(SIZE):
            data = sample.data.model_copy(
                update={"message_id": f"msg-{self.name}-{index}", "posted_at": now, "recipients": guardians(index)}
            )
            self.messages.append(sample.model_copy(update={"id": samples.new_id(), "time": now, "data": data}))

    def planned_events(self) -> list[CloudEvent]:
        return list(self.messages)

    def expected_ids(self) -> set[str]:
        return {
            notification_id_for(
                DeliveryKey(
                    event.data.school.id, event.source, event.id, guardian.guardian_id, channel.value, MESSAGE_NOTICE
                )
            )
            for event in self.messages
            for guardian in event.data.recipients
            for channel in guardian.channels
        }


def guardians(index: int) -> tuple[Recipient, ...]:
    return tuple(
        samples.sample_guardian(
            index * GUARDIANS_PER_MEETING + number + 1,
            guardian_id=f"g-{index}-{number}",
            channels=[Channel.EMAIL, Channel.SMS],
            delivery_mode=DeliveryMode.INSTANT,
        )
        for number in range(GUARDIANS_PER_MEETING)
    )


async def kill_while_an_event_is_held(run: Scenario, service: ServiceProcess, events: Sequence[CloudEvent]) -> None:
    """Hang the database, let the service read an event it cannot store, kill -9 it, recover, start it again."""
    database = HungSqliteDatabase(run.work_dir / run.database_file)
    await asyncio.to_thread(database.hang)
    try:
        await run.publish(events)
        await wait_until(
            lambda: " - Received" in service.log_text(), within=60, what=f"{run.name}: an event read and held"
        )
        await asyncio.sleep(AUTO_COMMIT_WINDOW)
        service.kill()
    finally:
        await asyncio.to_thread(database.recover)
    run.faults.append(f"kill -9 with an event held {AUTO_COMMIT_WINDOW:.0f} s by a hung database")
    await run.start(service)


async def kill_while_sending(run: Scenario, service: ServiceProcess) -> None:
    for share in (0.2, 0.6):
        await run.wait_progress(share)
        service.kill()
        run.faults.append(f"kill -9 at {share:.0%} delivered")
        await run.start(service)


async def test_reminders_survive_kill_minus_9_mid_event_and_mid_send_each_sent_exactly_once(
    kafka_bootstrap: str, tmp_path: Path, sinks: tuple[FaultySmtpSink, FaultyWebhookSink]
) -> None:
    async with scenario_of(RemindersScenario, "reminders-kill-9", kafka_bootstrap, tmp_path, sinks) as run:
        service = run.service()
        await run.start(service)
        # Meetings whose reminders are due tomorrow: the kill while one of them is held must lose none of them.
        tomorrow = await run.announce("held", due_in=timedelta(days=1))
        await kill_while_an_event_is_held(run, service, tomorrow)
        await run.check_scheduled(tomorrow)
        # Then meetings whose reminders fall due in 20 s, killed twice while they are sent.
        run.events = await run.announce("sent", due_in=timedelta(seconds=20))
        await run.publish(run.events)
        await kill_while_sending(run, service)
        await run.settle()
        await run.check(
            resends_allowed=IN_FLIGHT_PER_PROCESS * service.kills,
            smtp_duplicates_allowed=IN_FLIGHT_PER_PROCESS * service.kills,
            status_events_may_be_missing=True,
        )


async def test_digest_notices_survive_kill_minus_9_mid_event_and_mid_send_each_sent_exactly_once(
    kafka_bootstrap: str, tmp_path: Path, sinks: tuple[FaultySmtpSink, FaultyWebhookSink]
) -> None:
    async with scenario_of(DigestScenario, "digest-kill-9", kafka_bootstrap, tmp_path, sinks) as run:
        run.plan_messages()
        service = run.service()
        await run.start(service)
        await kill_while_an_event_is_held(run, service, run.planned_events())
        await kill_while_sending(run, service)
        await run.settle()
        await run.check(
            resends_allowed=IN_FLIGHT_PER_PROCESS * service.kills,
            smtp_duplicates_allowed=IN_FLIGHT_PER_PROCESS * service.kills,
            status_events_may_be_missing=True,
        )


async def test_reminders_and_digest_notices_through_one_kafka_broker_restart_are_each_sent_exactly_once(
    own_broker: OwnKafkaBroker, tmp_path: Path, sinks: tuple[FaultySmtpSink, FaultyWebhookSink]
) -> None:
    # Both services on one broker of the test's own (starting one costs more than the rest of the run), each with
    # its own sinks, database and topics.
    digest_sinks = (FaultySmtpSink(), FaultyWebhookSink())
    digest_sinks[0].up()
    try:
        async with (
            scenario_of(
                RemindersScenario, "reminders-broker", own_broker.bootstrap, tmp_path / "r", sinks
            ) as reminders,
            scenario_of(DigestScenario, "digest-broker", own_broker.bootstrap, tmp_path / "d", digest_sinks) as digest,
        ):
            # Claims longer than the outage: nothing crashes here, so no claim may pass on and be sent again.
            await asyncio.gather(
                reminders.start(reminders.service(DELIVERY_LEASE="120", REMINDERS_CLAIM_LEASE="PT120S")),
                digest.start(digest.service(DELIVERY_LEASE="120", DIGEST_CLAIM_LEASE="PT120S")),
            )
            reminders.events = await reminders.announce("sent", due_in=timedelta(seconds=30))
            await reminders.publish(reminders.events)
            # The notices go at once, the reminders half a minute later: publish the messages as the reminders
            # start, so that the broker goes away while both services are sending.
            await reminders.wait_progress(0.05)
            digest.plan_messages()
            await digest.publish(digest.planned_events())
            await digest.wait_progress(0.3)
            await asyncio.to_thread(own_broker.command, "stop")
            for run in (reminders, digest):
                run.faults.append("broker stopped mid-run, then started again on the same port and data")
            await asyncio.to_thread(own_broker.command, "start")
            await asyncio.gather(reminders.settle(), digest.settle())
            await reminders.check()
            await digest.check()
    finally:
        digest_sinks[0].down()
        digest_sinks[1].close()
