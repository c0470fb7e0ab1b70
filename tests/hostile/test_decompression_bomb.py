"""A compression bomb on the real broker: a few kilobytes of gzip that expand far past `KAFKA_MAX_RECORD_BYTES`.
The invitations service, as deployed, never holds the expanded batch: it dead-letters it as `record_too_large`
and sends the invitation published right after it."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from notify_invitations.testing import Deployment, isolated_settings
from notify_shared import samples
from notify_shared.contract import encode_structured, partition_key
from notify_shared.kafka.decompression import TOO_LARGE_HEADER, bounded_gzip_decode, install_decompression_limit
from notify_shared.settings import ServiceSettings
from notify_shared.testing.kafka import TopicReader, create_all_topics
from notify_shared.testing.sinks import SmsSink, SmtpSink, sms_sink, smtp_sink
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka

CAP = 64 * 1024
BOMB_BYTES = 32 * 1024 * 1024
"""Zeros compress about a thousandfold: the record Kafka stores is some 32 KiB; the value, 512 times the cap."""


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with smtp_sink() as sink:
        yield sink


@pytest.fixture
def sms() -> Iterator[SmsSink]:
    with sms_sink() as sink:
        yield sink


@pytest.fixture
async def deployment(kafka_bootstrap: str, tmp_path: Path, smtp: SmtpSink, sms: SmsSink) -> AsyncIterator[Deployment]:
    """The invitations service capped at 64 KiB per batch, its topics on one partition to keep the order."""
    settings = isolated_settings(kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path, smtp=smtp, sms=sms)
    settings = settings.model_copy(update={"kafka_max_record_bytes": CAP})
    await create_all_topics(kafka_bootstrap, settings.topics, partitions=1)
    yield Deployment(settings, smtp, sms)
    # The cap is process-wide, as aiokafka's decoders are: later tests get the default back.
    install_decompression_limit(ServiceSettings().kafka_max_record_bytes)


async def _publish_gzip(bootstrap: str, topic: str, value: bytes, key: bytes | None = None) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, compression_type="gzip", max_request_size=2 * BOMB_BYTES, acks="all"
    )
    await producer.start()
    try:
        metadata = await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()
    offset: int = metadata.offset
    return offset


async def test_a_compressed_record_that_expands_past_the_cap_is_dead_lettered_and_the_next_event_is_sent(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    topics = deployment.topics
    invitation = samples.meeting_created(event_id="e-after-the-bomb")
    value, headers = encode_structured(invitation)

    async with deployment.running():
        bomb_offset = await _publish_gzip(kafka_bootstrap, topics.meeting_created, b"\0" * BOMB_BYTES)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, compression_type="gzip")
        await producer.start()
        try:
            await producer.send_and_wait(
                topics.meeting_created, value, key=partition_key(invitation), headers=list(headers)
            )
        finally:
            await producer.stop()

        guardians = len(invitation.data.recipients)
        await wait_until(lambda: len(deployment.smtp.messages()) >= guardians, within=60, what="the invitation emails")

        async with TopicReader(kafka_bootstrap, topics.dead_letter) as reader:

            async def one_dead_letter() -> bool:
                return len(await reader.poll()) == 1

            await wait_until(one_dead_letter, within=30, what="the dead letter")
            (letter,) = reader.records

    data = letter["data"]
    assert data["reason"] == "record_too_large"
    assert data["original_offset"] == bomb_offset
    assert data["errors"] == [
        f"the compressed batch at offsets {bomb_offset}-{bomb_offset} expands past {CAP} bytes "
        "(KAFKA_MAX_RECORD_BYTES); its records were not read"
    ]
    # The expanded value was never held: the dead letter keeps the stand-in, an empty value and the marker.
    assert data["original_value_base64"] == ""
    assert [header["key"] for header in data["original_headers"]] == [TOO_LARGE_HEADER]


async def test_a_compressed_record_within_the_cap_is_read_as_usual(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    invitation = samples.meeting_created(event_id="e-compressed-and-fine")
    value, headers = encode_structured(invitation)

    async with deployment.running():
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, compression_type="gzip")
        await producer.start()
        try:
            await producer.send_and_wait(
                deployment.topics.meeting_created, value, key=partition_key(invitation), headers=list(headers)
            )
        finally:
            await producer.stop()

        guardians = len(invitation.data.recipients)
        await wait_until(lambda: len(deployment.smtp.messages()) >= guardians, within=60, what="the invitation emails")


def test_the_gzip_decoder_stops_reading_at_the_cap() -> None:
    import gzip  # noqa: PLC0415 - only this test compresses by hand

    decode = bounded_gzip_decode(CAP)

    assert decode(gzip.compress(b"a" * CAP)) == b"a" * CAP
    with pytest.raises(Exception, match=str(CAP)):
        decode(gzip.compress(b"a" * (CAP + 1)))
    assert base64.b64encode(decode(gzip.compress(b""))) == b""
