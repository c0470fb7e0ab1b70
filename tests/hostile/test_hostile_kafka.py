"""Hostile records on the real broker: the invitations service, as deployed, dead-letters every invalid record
with its reason, sends every valid event's notifications, and keeps going.

All records go to one partition of meeting.created, hostile ones between valid ones, so each valid event is
read right after an invalid record (the place a poison record would block). The valid events carry hostile text
too (line breaks, template syntax, script in titles and names); what the guardians get is checked as they get
it, from the local SMTP server and SMS endpoint.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from notify_invitations.testing import Deployment, isolated_settings
from notify_shared import samples
from notify_shared.contract import MeetingCreated, encode_structured, partition_key
from notify_shared.testing.kafka import TopicReader, committed_offset, create_all_topics
from notify_shared.testing.sinks import SmsSink, SmtpSink, sms_sink, smtp_sink
from notify_shared.testing.waiting import wait_until

from .hostile_inputs import Headers, HostileRecord, hostile_records, non_utf8_header_records

pytestmark = pytest.mark.kafka

HOSTILE_TITLES = (
    "Foreldremøte {{ 7*7 }}\r\nBcc: evil@example.com",
    "<script>alert(1)</script> 7B {% for x in range(3) %}Q{% endfor %}",
    "Møte\u202e 7B {{ config }} <img src=x onerror=alert(1)>",
)


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with smtp_sink() as sink:
        yield sink


@pytest.fixture
def sms() -> Iterator[SmsSink]:
    with sms_sink() as sink:
        yield sink


@pytest.fixture
async def deployment(kafka_bootstrap: str, tmp_path: Path, smtp: SmtpSink, sms: SmsSink) -> Deployment:
    """The invitations service with every topic on one partition, so the records keep the order published."""
    settings = isolated_settings(kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path, smtp=smtp, sms=sms)
    await create_all_topics(kafka_bootstrap, settings.topics, partitions=1)
    return Deployment(settings, smtp, sms)


def valid_meeting(number: int) -> MeetingCreated:
    """A valid invitation with hostile text in the title and the guardian's name, for one guardian."""
    title = HOSTILE_TITLES[number % len(HOSTILE_TITLES)]
    return samples.meeting_created(
        event_id=f"e-valid-{number}",
        meeting=samples.sample_meeting(meeting_id=f"m-valid-{number}", title=title),
        recipients=[samples.sample_guardian(number, name=f"Kari\r\nNordmann {{{{ 7*7 }}}} {number}")],
    )


@dataclass
class Published:
    offset: int
    hostile: HostileRecord | None = None
    valid: MeetingCreated | None = None


async def publish_interleaved(
    bootstrap: str, topic: str, hostile: Sequence[HostileRecord], valid: Sequence[tuple[MeetingCreated, Headers]]
) -> list[Published]:
    """Valid, hostile, hostile, valid, hostile, …, ending with a valid event, all on partition 0."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    published: list[Published] = []
    try:
        per_gap = -(-len(hostile) // (len(valid) - 1))
        for index, (event, extra_headers) in enumerate(valid):
            value, headers = encode_structured(event)
            sent = await producer.send_and_wait(
                topic, value, key=partition_key(event), headers=[*headers, *extra_headers], partition=0
            )
            published.append(Published(sent.offset, valid=event))
            for record in hostile[index * per_gap : (index + 1) * per_gap]:
                sent = await producer.send_and_wait(
                    topic, record.value, key=b"m-hostile", headers=list(record.headers), partition=0
                )
                published.append(Published(sent.offset, hostile=record))
    finally:
        await producer.stop()
    return published


async def run_and_collect(
    deployment: Deployment, kafka_bootstrap: str, published_in: Callable[[str], Awaitable[list[Published]]]
) -> tuple[list[Published], list[dict[str, Any]]]:
    """Start the service, publish, wait until the last valid event was handled, and read the dead letters."""
    topic = deployment.topics.meeting_created
    async with (
        deployment.running(),
        TopicReader(kafka_bootstrap, deployment.topics.dead_letter) as dead_letters,
    ):
        published = await published_in(topic)
        last = published[-1]
        assert last.valid is not None

        async def consumed_past_the_end() -> bool:
            group = deployment.settings.consumer_group
            return await committed_offset(kafka_bootstrap, group, topic, 0) > last.offset

        await wait_until(consumed_past_the_end, within=60, what="the last record to be handled and committed")
        expected = sum(item.hostile is not None for item in published)

        async def every_dead_letter() -> bool:
            return len(await dead_letters.poll()) >= expected

        # The service publishes each dead letter before it commits past the record, so they are all there by
        # now; a short wait covers only the reader's own fetch.
        await wait_until(every_dead_letter, within=5, what=f"{expected} dead letters")
    return published, dead_letters.records


def assert_dead_lettered_with_reasons(published: list[Published], letters: list[dict[str, Any]]) -> None:
    by_offset = {letter["data"]["original_offset"]: letter["data"] for letter in letters}
    hostile = [item for item in published if item.hostile is not None]
    assert len(letters) == len(hostile), "one dead letter per invalid record, nothing else"
    for item in hostile:
        assert item.hostile is not None
        data = by_offset[item.offset]
        assert (item.hostile.name, data["reason"]) == (item.hostile.name, item.hostile.reason)
        assert data["errors"], item.hostile.name
        assert data["service"] == "invitations"
        kept = base64.b64decode(data["original_value_base64"])
        if any(error.startswith("the record was too large") for error in data["errors"]):
            assert (item.hostile.value or b"").startswith(kept), item.hostile.name
        else:
            assert kept == (item.hostile.value or b""), item.hostile.name


def assert_every_valid_event_notified(deployment: Deployment, published: list[Published]) -> None:
    valid = [item.valid for item in published if item.valid is not None]
    emails = {item.envelope_to[0]: item.message for item in deployment.smtp.received}
    texts = {message["to"]: message["text"] for message in deployment.sms.messages()}
    assert len(emails) == len(deployment.smtp.received) == len(valid)
    assert len(texts) == len(deployment.sms.messages()) == len(valid)
    for event in valid:
        (guardian,) = event.data.recipients
        assert guardian.email is not None
        assert guardian.phone is not None
        email = emails[guardian.email]
        assert email.get_all("Bcc") is None
        assert len(email.get_all("To") or []) == 1
        assert len(email.get_all("Subject") or []) == 1
        assert event.data.meeting.title in str(email["Subject"])  # folded to one line, shown as typed
        assert "{{ 7*7 }}" in str(email["Subject"]) or "{{ 7*7 }}" not in event.data.meeting.title
        html_part = email.get_body(preferencelist=("html",))
        assert html_part is not None
        assert "<script" not in html_part.get_content()
        assert "{{ 7*7 }}" in texts[guardian.phone]  # the guardian's name, as typed, in the greeting
        assert "49" not in texts[guardian.phone]


class ErrorLog(logging.Handler):
    """Errors our code logs, and those FastStream logs about a message (a handler or decoder that raised); its
    access logger does not propagate to the root logger, so pytest's caplog never sees them."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


WATCHED = ("faststream.access.kafka", "notify_shared", "notify_invitations")


@pytest.fixture
def errors_logged() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    for name in WATCHED:
        logging.getLogger(name).addHandler(handler)
    try:
        yield handler
    finally:
        for name in WATCHED:
            logging.getLogger(name).removeHandler(handler)


def assert_nothing_crashed(errors_logged: ErrorLog) -> None:
    """No handler or decoder raised (FastStream would log it) and our own code logged no error. (aiokafka's
    errors are not watched: a consumer's first `GroupCoordinatorNotAvailable` on a fresh broker is transient.)"""
    failures = [f"{record.name}: {record.getMessage()[:200]}" for record in errors_logged.records]
    assert not failures, "\n".join(failures)


async def test_hostile_records_between_valid_events_are_dead_lettered_and_the_valid_ones_all_notify(
    deployment: Deployment, kafka_bootstrap: str, errors_logged: ErrorLog
) -> None:
    hostile = hostile_records()
    valid = [(valid_meeting(number), ()) for number in range(1, 6)]

    published, letters = await run_and_collect(
        deployment, kafka_bootstrap, partial(publish_interleaved, kafka_bootstrap, hostile=hostile, valid=valid)
    )

    assert len(published) == len(hostile) + len(valid)
    assert_dead_lettered_with_reasons(published, letters)
    assert_every_valid_event_notified(deployment, published)
    assert_nothing_crashed(errors_logged)


async def test_records_with_headers_that_are_not_utf8_are_dead_lettered_or_handled(
    deployment: Deployment,
    kafka_bootstrap: str,
    errors_logged: ErrorLog,
) -> None:
    hostile = non_utf8_header_records()
    # A valid event with a binary header someone else's tooling added: it must still reach the guardian.
    valid = [(valid_meeting(11), ()), (valid_meeting(12), (("x-trace", b"\xff\x00\xfe"),)), (valid_meeting(13), ())]

    published, letters = await run_and_collect(
        deployment, kafka_bootstrap, partial(publish_interleaved, kafka_bootstrap, hostile=hostile, valid=valid)
    )

    assert_dead_lettered_with_reasons(published, letters)
    assert_every_valid_event_notified(deployment, published)
    assert_nothing_crashed(errors_logged)
