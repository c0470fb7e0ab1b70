"""Digest end to end on the real broker: instant notices, daily and weekly digests, absences, replicas."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest

from notify_digest.runtime import Runtime
from notify_digest.testing import Deployment
from notify_shared import samples
from notify_shared.channels import DeliveryReceipt, OutgoingEmail, SmtpEmailChannel
from notify_shared.contract import (
    AbsenceNoted,
    Channel,
    CloudEvent,
    DeliveryMode,
    Lesson,
    MessagePosted,
    NotedAbsence,
    PostedMessage,
    Pupil,
    Recipient,
)
from notify_shared.testing.kafka import TopicReader, publish_applied
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 11, 30, 8, 40, tzinfo=OSLO)
MONDAY_17 = datetime(2026, 11, 30, 17, 0, tzinfo=OSLO)
FRIDAY_14 = datetime(2026, 12, 4, 14, 0, tzinfo=OSLO)
SCHOOL = samples.sample_school()


def guardian(number: int, mode: DeliveryMode | None, channels: tuple[Channel, ...] = (Channel.EMAIL,)) -> Recipient:
    return samples.sample_guardian(number, delivery_mode=mode, channels=list(channels))


def message(
    recipients: list[Recipient],
    *,
    subject: str = "Tur til Sognsvann fredag",
    body: str = "Husk **matpakke** og varme klær. Mer info: https://bjolsen.example.no/tur",
    urgent: bool = False,
    event_id: str | None = None,
    at: datetime = MONDAY,
) -> MessagePosted:
    return MessagePosted(
        id=event_id or samples.new_id(),
        source=samples.SOURCE,
        time=at,
        data=PostedMessage(
            school=SCHOOL,
            message_id=f"msg-{samples.new_id()[:8]}",
            class_id="c-7b",
            class_name="7B",
            author_name="Ole Lærer",
            subject=subject,
            body=body,
            urgent=urgent,
            posted_at=at,
            recipients=tuple(recipients),
        ),
    )


def absence(
    recipients: list[Recipient], *, period: int | None, reported_by_guardian: bool = False, at: datetime = MONDAY
) -> AbsenceNoted:
    lessons = () if period is None else (Lesson(period=period, subject=["Matematikk", "Norsk", "Engelsk"][period - 1]),)
    return AbsenceNoted(
        id=samples.new_id(),
        source=samples.SOURCE,
        time=at,
        data=NotedAbsence(
            school=SCHOOL,
            pupil=Pupil(pupil_id="p-77120", first_name="Emma", class_name="7B"),
            date=date(2026, 11, 30),
            lessons=lessons,
            reported_by_guardian=reported_by_guardian,
            reason="Sykdom: omgangssyke",
            recipients=tuple(recipients),
        ),
    )


async def _apply(deployment: Deployment, kafka_bootstrap: str, *events: CloudEvent) -> None:
    """Publish events and wait until the service has committed them, i.e. stored or sent what they mean."""
    await publish_applied(kafka_bootstrap, deployment.topics, deployment.settings.consumer_group, *events)


async def _run_at(deployment: Deployment, runtime: Runtime, moment: datetime) -> None:
    deployment.clock.set(moment)
    await runtime.runner.run_due()


def _plain(message_: EmailMessage) -> str:
    body = message_.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def _html(message_: EmailMessage) -> str:
    body = message_.get_body(("html",))
    assert body is not None
    return str(body.get_content())


class _TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, tuple[tuple[str, str | None], ...]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, tuple(attrs)))


def _tags(html: str) -> list[tuple[str, tuple[tuple[str, str | None], ...]]]:
    collector = _TagCollector()
    collector.feed(html)
    return collector.tags


def _mail_to(deployment: Deployment, address: str) -> list[EmailMessage]:
    return [item.message for item in deployment.smtp.received if item.envelope_to == [address]]


async def test_an_urgent_message_goes_at_once_to_every_eligible_guardian_on_each_channel(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    both = (Channel.EMAIL, Channel.SMS)
    recipients = [
        guardian(1, DeliveryMode.WEEKLY, both),
        guardian(2, DeliveryMode.OFF, both),
        samples.sample_guardian(3, has_parental_responsibility=False),
    ]
    urgent = message(
        recipients, subject="Skolen stenger kl. 12 i dag", body="Vannlekkasje. Hent barna kl. 12.", urgent=True
    )
    async with deployment.running():
        await _apply(deployment, kafka_bootstrap, urgent)
    assert sorted(item.envelope_to[0] for item in deployment.smtp.received) == [
        "guardian1@example.no",
        "guardian2@example.no",
    ]
    assert sorted(sms["to"] for sms in deployment.sms.messages()) == ["+4790000001", "+4790000002"]
    email = deployment.smtp.received[0].message
    assert "Skolen stenger kl. 12 i dag" in email["Subject"]
    assert "Vannlekkasje" in _plain(email)  # the content itself, not "log in to read"
    assert "Vannlekkasje" in deployment.sms.messages()[0]["text"]


async def test_each_delivery_mode_gets_what_it_asked_for(deployment: Deployment, kafka_bootstrap: str) -> None:
    recipients = [
        guardian(1, DeliveryMode.INSTANT),
        guardian(2, DeliveryMode.DAILY),
        guardian(3, DeliveryMode.WEEKLY),
        guardian(4, DeliveryMode.OFF),
    ]
    async with (
        deployment.running() as runtime,
        TopicReader(kafka_bootstrap, deployment.topics.notification_status) as statuses,
    ):
        await _apply(deployment, kafka_bootstrap, message(recipients))
        assert [item.envelope_to for item in deployment.smtp.received] == [["guardian1@example.no"]]

        await _run_at(deployment, runtime, MONDAY_17 - timedelta(minutes=1))
        assert len(deployment.smtp.received) == 1
        await _run_at(deployment, runtime, MONDAY_17)
        assert [item.envelope_to for item in deployment.smtp.received][1:] == [["guardian2@example.no"]]
        await _run_at(deployment, runtime, FRIDAY_14)
        assert [item.envelope_to for item in deployment.smtp.received][2:] == [["guardian3@example.no"]]

        async def four_statuses() -> bool:
            return len(await statuses.poll()) >= 4

        await wait_until(four_statuses, what="a status for every guardian")
    off = [s["data"] for s in statuses.records if s["data"]["guardian_id"] == "g-1004"]
    assert [(s["status"], s["reason"]) for s in off] == [("skipped", "delivery_mode_off")]

    daily = _mail_to(deployment, "guardian2@example.no")[0]
    assert "Tur til Sognsvann fredag" in _plain(daily)
    assert "1" in daily["Subject"]


async def test_nothing_new_means_nothing_sent_and_each_item_is_in_exactly_one_digest(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    daily = guardian(1, DeliveryMode.DAILY)
    async with deployment.running() as runtime:
        await _run_at(deployment, runtime, MONDAY_17)
        assert deployment.smtp.received == []
        await _apply(deployment, kafka_bootstrap, message([daily], subject="Første melding"))
        await _run_at(deployment, runtime, MONDAY_17)
        await _run_at(deployment, runtime, MONDAY_17 + timedelta(hours=1))
        assert len(deployment.smtp.received) == 1
        deployment.clock.set(MONDAY_17 + timedelta(hours=2))
        await _apply(
            deployment, kafka_bootstrap, message([daily], subject="Andre melding", at=MONDAY_17 + timedelta(hours=2))
        )
        await _run_at(deployment, runtime, MONDAY_17 + timedelta(days=1))
        await _run_at(deployment, runtime, MONDAY_17 + timedelta(days=2))
    first, second = (item.message for item in deployment.smtp.received)
    assert "Første melding" in _plain(first)
    assert "Andre melding" not in _plain(first)
    assert "Andre melding" in _plain(second)
    assert "Første melding" not in _plain(second)


async def test_lesson_by_lesson_absences_become_one_notice_after_the_debounce_window_without_the_reason(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    parent = samples.sample_guardian(1, channels=[Channel.SMS, Channel.EMAIL], delivery_mode=DeliveryMode.WEEKLY)
    async with deployment.running() as runtime:
        await _apply(
            deployment,
            kafka_bootstrap,
            absence([parent], period=1),
            absence([parent], period=2, at=MONDAY + timedelta(minutes=4)),
        )
        deployment.clock.set(MONDAY + timedelta(minutes=4))
        await _apply(deployment, kafka_bootstrap, absence([parent], period=3, at=MONDAY + timedelta(minutes=8)))
        await _run_at(deployment, runtime, MONDAY + timedelta(minutes=9))
        assert deployment.sms.messages() == []
        await _run_at(deployment, runtime, MONDAY + timedelta(minutes=10))
        await _run_at(deployment, runtime, FRIDAY_14)
    (notice,) = deployment.sms.messages()
    for lesson in ("Matematikk", "Norsk", "Engelsk"):
        assert lesson in notice["text"]
    assert "Emma" in notice["text"]
    (digest,) = deployment.smtp.received
    everything = notice["text"] + _plain(digest.message) + _html(digest.message)
    assert "Sykdom" not in everything
    assert "omgangssyke" not in everything


async def test_an_absence_the_guardian_reported_is_only_in_the_digest(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    parent = samples.sample_guardian(1, channels=[Channel.SMS, Channel.EMAIL], delivery_mode=DeliveryMode.DAILY)
    async with deployment.running() as runtime:
        await _apply(deployment, kafka_bootstrap, absence([parent], period=None, reported_by_guardian=True))
        await _run_at(deployment, runtime, MONDAY + timedelta(hours=1))
        assert deployment.sms.messages() == []
        await _run_at(deployment, runtime, MONDAY_17)
    (digest,) = deployment.smtp.received
    assert "Emma" in _plain(digest.message)


async def test_teachers_markdown_is_formatted_and_html_or_script_never_reaches_the_email(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    body = (
        "Husk **matpakke**!\n\n- varme klær\n- gode sko\n\n"
        "Se https://bjolsen.example.no/tur og [skjema](javascript:alert(1)).\n\n"
        "<script>alert('x')</script> <img src=x onerror=alert(1)> {{ 7*7 }} {% for x in y %}"
    )
    async with deployment.running():
        await _apply(deployment, kafka_bootstrap, message([guardian(1, DeliveryMode.INSTANT)], body=body))
    (received,) = deployment.smtp.received
    html = _html(received.message)
    tags = _tags(html)
    names = [tag for tag, _ in tags]
    assert "strong" in names
    assert "li" in names
    assert ("a", ("href", "https://bjolsen.example.no/tur")) in [
        (tag, attribute) for tag, attributes in tags for attribute in attributes
    ]
    assert not {"script", "img", "iframe"} & set(names)
    for _, attributes in tags:
        for name, value in attributes:
            assert not name.startswith("on")
            assert not (value or "").strip().lower().startswith("javascript:")
    assert "{{ 7*7 }}" in _plain(received.message)
    assert "49" not in _plain(received.message)


async def test_an_instant_message_in_quiet_hours_waits_for_the_morning(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    evening = datetime(2026, 11, 30, 22, 15, tzinfo=OSLO)
    deployment.clock.set(evening)
    async with deployment.running() as runtime:
        await _apply(deployment, kafka_bootstrap, message([guardian(1, DeliveryMode.INSTANT)], at=evening))
        await _run_at(deployment, runtime, evening + timedelta(hours=1))
        assert deployment.smtp.received == []
        await _run_at(deployment, runtime, datetime(2026, 12, 1, 7, 0, tzinfo=OSLO))
    assert len(deployment.smtp.received) == 1


class ProcessDiedError(Exception):
    """Stands for the process dying: raised instead of connecting to the mail server."""


async def test_a_crash_in_the_middle_of_a_digest_run_resumes_without_resending(
    deployment_on_each_database: Deployment, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = deployment_on_each_database
    deployment.settings = deployment.settings.model_copy(update={"batch_size": 4})
    parents = [guardian(number, DeliveryMode.WEEKLY) for number in range(1, 31)]
    real_send = SmtpEmailChannel.send_email
    started = 0

    async def send_until_the_process_dies(channel: SmtpEmailChannel, email: OutgoingEmail) -> DeliveryReceipt:
        # The 10th send never reaches the server: the process "dies" between digests of one run, after
        # nine were sent and recorded and while others of the same batch were claimed but not sent.
        nonlocal started
        started += 1
        if started > 9:
            raise ProcessDiedError
        return await real_send(channel, email)

    async with deployment.running("replica-that-dies") as doomed:
        await _apply(deployment, kafka_bootstrap, message(parents))
        deployment.clock.set(FRIDAY_14)
        monkeypatch.setattr(SmtpEmailChannel, "send_email", send_until_the_process_dies)
        with pytest.raises(ProcessDiedError):
            await doomed.runner.run_due()
        monkeypatch.setattr(SmtpEmailChannel, "send_email", real_send)
    assert len(deployment.smtp.received) == 9
    async with deployment.running("replica-that-takes-over") as survivor:
        # Claims of the dead replica pass on once their lease has run out.
        await _run_at(deployment, survivor, FRIDAY_14 + timedelta(minutes=1))
        assert len(deployment.smtp.received) < 30  # the untouched digests; the dead one's claims still hold
        await _run_at(deployment, survivor, FRIDAY_14 + deployment.settings.claim_lease + timedelta(seconds=1))
    recipients = [item.envelope_to[0] for item in deployment.smtp.received]
    assert sorted(recipients) == sorted(f"guardian{number}@example.no" for number in range(1, 31))


@pytest.mark.postgres
async def test_two_replicas_on_postgresql_send_each_digest_exactly_once(
    deployment_on_each_database: Deployment, kafka_bootstrap: str
) -> None:
    deployment = deployment_on_each_database
    if not deployment.settings.database_url.startswith("postgresql"):
        pytest.skip("replicas need a shared PostgreSQL database")
    deployment.settings = deployment.settings.model_copy(update={"batch_size": 3})
    parents = [guardian(number, DeliveryMode.WEEKLY) for number in range(1, 41)]
    async with deployment.running("replica-a") as first, deployment.running("replica-b") as second:
        await _apply(deployment, kafka_bootstrap, message(parents), message(parents, subject="Ukebrev uke 49"))
        deployment.clock.set(FRIDAY_14)
        reports = await asyncio.gather(first.runner.run_due(), second.runner.run_due())
    recipients = [item.envelope_to[0] for item in deployment.smtp.received]
    assert sorted(recipients) == sorted(f"guardian{number}@example.no" for number in range(1, 41))
    assert sum(report.digests_sent for report in reports) == 40
    assert all("Ukebrev uke 49" in _plain(item.message) for item in deployment.smtp.received)


async def test_an_absence_notice_reaches_each_guardian_once_by_sms_never_as_sms_and_email_both(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    # Both channels listed, no digest: the notice is the only thing either guardian gets.
    texts = samples.sample_guardian(1, channels=[Channel.EMAIL, Channel.SMS], delivery_mode=DeliveryMode.INSTANT)
    mails = samples.sample_guardian(2, channels=[Channel.EMAIL], delivery_mode=DeliveryMode.INSTANT)
    async with deployment.running() as runtime:
        await _apply(deployment, kafka_bootstrap, absence([texts, mails], period=1))
        await _run_at(deployment, runtime, MONDAY + timedelta(minutes=10))

    assert [sms["to"] for sms in deployment.sms.messages()] == [texts.phone]
    assert [item.envelope_to for item in deployment.smtp.received] == [[mails.email]]


async def test_an_absence_notice_to_a_landline_goes_by_email_and_no_sms_is_sent(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    landline = samples.sample_guardian(
        1, phone="22 12 34 56", channels=[Channel.SMS, Channel.EMAIL], delivery_mode=DeliveryMode.INSTANT
    )
    async with deployment.running() as runtime:
        await _apply(deployment, kafka_bootstrap, absence([landline], period=1))
        await _run_at(deployment, runtime, MONDAY + timedelta(minutes=10))

    assert deployment.sms.messages() == []
    (notice,) = deployment.smtp.received
    assert notice.envelope_to == [landline.email]
    assert "Emma" in _plain(notice.message)


async def test_each_event_says_on_event_handled_whether_it_was_sent_or_kept_for_the_digest(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    weekly = guardian(1, DeliveryMode.WEEKLY)
    for_the_digest = message([weekly])
    urgent = message([weekly], urgent=True)
    async with deployment.running():
        await _apply(deployment, kafka_bootstrap, for_the_digest, urgent)
    async with TopicReader(kafka_bootstrap, deployment.settings.topics.event_handled) as handled:
        reports = {report["data"]["source_event_id"]: report["data"] for report in await handled.read_to_end()}

    kept = reports[for_the_digest.id]
    assert (kept["outcome"], kept["scheduled"], kept["notifications"]) == ("scheduled", 1, {})
    sent = reports[urgent.id]
    assert (sent["outcome"], sent["notifications"]) == ("notified", {"sent": 1})
    assert {report["service"] for report in reports.values()} == {"digest"}
