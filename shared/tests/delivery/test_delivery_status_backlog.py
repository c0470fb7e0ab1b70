"""Status events Kafka refuses are kept in the ledger's database and published once it takes them again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka.errors import KafkaTimeoutError
from sqlalchemy.exc import OperationalError

from notify_shared import samples
from notify_shared.channels import DeliveryReceipt, OutgoingEmail, OutgoingSms
from notify_shared.contract import Channel, NotificationStatusReport
from notify_shared.delivery import Dispatcher, PlannedNotification, RetryWorker, SourceEventRef
from notify_shared.delivery.status_backlog import StatusBacklog
from notify_shared.ledger import DeliveryLedger, DeliveryStatus, create_engine
from notify_shared.observability import ServiceMetrics
from notify_shared.rendering import render_notification
from notify_shared.testing.clocks import SettableClock
from notify_shared.testing.waiting import wait_until


class FlakyStatusTopic:
    """The status topic: refuses every publish while `down`, keeps what it took."""

    def __init__(self) -> None:
        self.down = False
        self.reports: list[NotificationStatusReport] = []

    async def publish_status(self, report: NotificationStatusReport) -> None:
        if self.down:
            raise KafkaTimeoutError()
        self.reports.append(report)


class AcceptingChannel:
    name = "accepting"

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_email(self, message: OutgoingEmail) -> DeliveryReceipt:
        self.sent.append(message.notification_id)
        return DeliveryReceipt(provider=self.name, provider_message_id=None)

    async def send_sms(self, message: OutgoingSms) -> DeliveryReceipt:
        self.sent.append(message.notification_id)
        return DeliveryReceipt(provider=self.name, provider_message_id=None)

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[DeliveryLedger]:
    clock = SettableClock(datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    ledger = await DeliveryLedger.connect(database_url, clock=clock)
    try:
        yield ledger
    finally:
        await ledger.aclose()


def dispatcher_for(
    ledger: DeliveryLedger,
    topic: FlakyStatusTopic,
    channel: AcceptingChannel,
    metrics: ServiceMetrics | None = None,
) -> Dispatcher:
    return Dispatcher(
        ledger=ledger,
        render=render_notification,
        email=channel,
        sms=channel,
        status_sink=topic,
        email_sender="Bjølsen skole <no-reply@bjolsen.example.no>",
        metrics=metrics,
    )


def invitation_plans(event_id: str, guardians: int) -> list[PlannedNotification]:
    recipients = [samples.sample_guardian(number + 1) for number in range(guardians)]
    event = samples.meeting_created(event_id=event_id, recipients=recipients)
    return [
        PlannedNotification(
            source=SourceEventRef(source=event.source, id=event.id, type=event.type),
            school=event.data.school,
            guardian=guardian,
            channel=channel,
            template="meeting_invitation",
            context={"school": event.data.school, "meeting": event.data.meeting, "guardian": guardian},
        )
        for guardian in recipients
        for channel in (Channel.EMAIL, Channel.SMS)
    ]


async def test_an_event_delivered_while_kafka_refuses_status_events_is_not_failed_and_its_statuses_come_later(
    ledger: DeliveryLedger,
) -> None:
    topic, channel = FlakyStatusTopic(), AcceptingChannel()
    dispatcher = dispatcher_for(ledger, topic, channel)
    topic.down = True

    outcomes = await dispatcher.dispatch(invitation_plans("evt-kafka-away", guardians=3))

    # The handler does not fail (which would only lead to a second handling that publishes nothing).
    assert [outcome.status for outcome in outcomes] == [DeliveryStatus.SENT] * 6
    assert topic.reports == []
    assert await dispatcher.status_backlog.pending() == 6

    # While Kafka is still away the worker tries, keeps everything, and goes on with its retries.
    worker = RetryWorker(dispatcher, owner="test", poll_interval=timedelta(seconds=15))
    await worker.run_due()
    assert await dispatcher.status_backlog.pending() == 6

    topic.down = False
    await worker.run_due()

    assert await dispatcher.status_backlog.pending() == 0
    assert sorted(report.notification_id for report in topic.reports) == sorted(o.notification_id for o in outcomes)
    assert {report.status for report in topic.reports} == {DeliveryStatus.SENT}
    assert len(channel.sent) == 6


async def test_kept_statuses_go_out_oldest_first_in_batches_and_each_once(ledger: DeliveryLedger) -> None:
    topic = FlakyStatusTopic()
    backlog = StatusBacklog(ledger.engine, topic, batch_size=4)
    reports = [_report(f"ntf-{number:02d}") for number in range(10)]
    for report in reports:
        await backlog.keep(report)

    assert await backlog.republish() == 10
    assert await backlog.republish() == 0

    assert [report.notification_id for report in topic.reports] == [report.notification_id for report in reports]
    assert topic.reports == reports


async def test_two_replicas_republishing_at_once_publish_each_kept_status_once(
    ledger: DeliveryLedger, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas need a shared PostgreSQL database")
    topic = GatedStatusTopic()
    first = StatusBacklog(ledger.engine, topic, batch_size=5)
    other_replica = create_engine(database_url)
    second = StatusBacklog(other_replica, topic, batch_size=5)
    try:
        for number in range(20):
            await first.keep(_report(f"ntf-{number:02d}"))

        # The first replica's batch is in flight (its rows locked) when the second starts: the second must take
        # the next five, not the same.
        first_run = asyncio.create_task(first.republish())
        await wait_until(lambda: topic.waiting == 5, what="the first batch in flight")
        second_run = asyncio.create_task(second.republish())
        await wait_until(lambda: topic.waiting == 10, what="the second replica's batch in flight")
        topic.gate.set()
        published = await asyncio.gather(first_run, second_run)
    finally:
        await other_replica.dispose()

    assert sum(published) == 20
    assert sorted(report.notification_id for report in topic.reports) == [f"ntf-{n:02d}" for n in range(20)]
    assert await first.pending() == 0


class GatedStatusTopic(FlakyStatusTopic):
    """Holds every publish until `gate` is set, so two replicas' batches are in flight together."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = 0

    async def publish_status(self, report: NotificationStatusReport) -> None:
        self.waiting += 1
        await self.gate.wait()
        await super().publish_status(report)


async def test_a_status_kafka_takes_at_once_is_not_kept(ledger: DeliveryLedger) -> None:
    topic = FlakyStatusTopic()
    backlog = StatusBacklog(ledger.engine, topic)

    await backlog.sink().publish_status(_report("ntf-direct"))

    assert [report.notification_id for report in topic.reports] == ["ntf-direct"]
    assert await backlog.pending() == 0


async def test_when_the_database_fails_too_the_kafka_error_goes_up_so_the_event_is_handled_again(
    tmp_path: Path,
) -> None:
    topic = FlakyStatusTopic()
    topic.down = True
    unreachable = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'no-such-directory' / 'ledger.db'}")
    backlog = StatusBacklog(unreachable, topic)
    try:
        with pytest.raises(KafkaTimeoutError) as raised:
            await backlog.sink().publish_status(_report("ntf-nowhere"))
    finally:
        await unreachable.dispose()

    assert isinstance(raised.value.__cause__, OperationalError)


async def test_a_kept_status_names_the_notification_in_the_log_but_no_contact_details(
    ledger: DeliveryLedger, caplog: pytest.LogCaptureFixture
) -> None:
    topic, channel = FlakyStatusTopic(), AcceptingChannel()
    topic.down = True
    caplog.set_level("INFO", logger="notify_shared.delivery")

    (email, _sms) = await dispatcher_for(ledger, topic, channel).dispatch(invitation_plans("evt-log", guardians=1))

    warnings = [r.getMessage() for r in caplog.records if r.name == "notify_shared.delivery.status_backlog"]
    assert any(email.notification_id in line and "KafkaTimeoutError" in line for line in warnings)
    assert not any("@" in line or "+47" in line for line in warnings)


def _report(notification_id: str) -> NotificationStatusReport:
    return NotificationStatusReport(
        notification_id=notification_id,
        source_event_source="/visma-flyt/0301",
        source_event_id="evt-1",
        source_event_type="no.skole.meeting.created",
        school_id="school-1",
        guardian_id="g-1",
        channel=Channel.EMAIL,
        template="meeting_invitation",
        language="nb",
        status=DeliveryStatus.SENT,
        reason=None,
        attempt=1,
        sms_segments=None,
        occurred_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
    )


async def test_operators_see_how_many_status_events_wait_in_the_metrics(ledger: DeliveryLedger) -> None:
    topic, channel = FlakyStatusTopic(), AcceptingChannel()
    metrics = ServiceMetrics("invitations")
    dispatcher = dispatcher_for(ledger, topic, channel, metrics)
    topic.down = True

    await dispatcher.dispatch(invitation_plans("evt-metrics", guardians=2))

    assert 'notify_status_events_waiting{service="invitations"} 4.0' in (await metrics.render()).decode()
    topic.down = False
    await dispatcher.status_backlog.republish()
    assert 'notify_status_events_waiting{service="invitations"} 0.0' in (await metrics.render()).decode()


async def republishing_three_held_at_kafka(backlog: StatusBacklog, topic: GatedStatusTopic) -> asyncio.Task[int]:
    """Three statuses kept, and a republishing of them under way, held at the gated topic."""
    for number in range(3):
        await backlog.keep(_report(f"ntf-{number}"))
    republishing = asyncio.create_task(backlog.republish())
    await wait_until(lambda: topic.waiting == 3, what="the kept statuses in flight")
    return republishing


async def test_the_ledger_is_not_held_while_kafka_takes_its_time_over_kept_statuses(ledger: DeliveryLedger) -> None:
    topic = GatedStatusTopic()
    backlog = StatusBacklog(ledger.engine, topic)
    republishing = await republishing_three_held_at_kafka(backlog, topic)

    # Meanwhile the service goes on writing to its database (here: another status kept).
    await asyncio.wait_for(backlog.keep(_report("ntf-meanwhile")), timeout=10)
    topic.gate.set()

    assert await republishing == 3
    assert await backlog.pending() == 1


async def test_two_republishings_in_one_process_publish_each_kept_status_once(ledger: DeliveryLedger) -> None:
    topic = GatedStatusTopic()
    backlog = StatusBacklog(ledger.engine, topic)
    first = await republishing_three_held_at_kafka(backlog, topic)

    second = asyncio.create_task(backlog.republish())
    topic.gate.set()

    assert sorted(await asyncio.gather(first, second)) == [0, 3]
    assert len(topic.reports) == 3
