"""`notify publish`: a person publishes a built-in sample or an event from a file, and a service on the real broker
reads exactly that event from its topic; a file that breaks the contract is refused and nothing is published."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from typer.testing import CliRunner, Result

from notify_shared import samples
from notify_shared.cli import app
from notify_shared.cli.dlq import topic_partitions
from notify_shared.contract import INPUT_EVENT_TYPES, MeetingCreated, MeetingUpdated, decode_event
from notify_shared.testing.kafka import create_all_topics
from notify_shared.topics import Topics

pytestmark = pytest.mark.kafka


async def fresh_topics(bootstrap: str) -> Topics:
    topics = Topics(f"cli-{uuid.uuid4().hex[:8]}.")
    await create_all_topics(bootstrap, topics)
    return topics


def notify(bootstrap: str, topics: Topics, *args: str) -> Result:
    environment = {"COLUMNS": "250", "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "TOPIC_PREFIX": topics.prefix}
    return CliRunner().invoke(app, ["publish", *args], env=environment)


async def records_on(bootstrap: str, topic: str) -> list[Any]:
    """Every record on `topic` now, from every partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, partition) for partition in await topic_partitions(bootstrap, topic)]
        consumer.assign(assigned)
        ends = await consumer.end_offsets(assigned)
        await consumer.seek_to_beginning(*assigned)
        records: list[Any] = []
        async with asyncio.timeout(30):
            while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def test_a_sample_update_is_published_to_its_topic_as_the_services_read_it(kafka_bootstrap: str) -> None:
    topics = await fresh_topics(kafka_bootstrap)

    result = await asyncio.to_thread(
        notify, kafka_bootstrap, topics, "--sample", "meeting.updated", "--meeting-id", "m-2027-5a-foreldremote"
    )

    assert result.exit_code == 0, result.output
    (record,) = await records_on(kafka_bootstrap, topics.meeting_updated)
    event = decode_event(record.value, record.headers, INPUT_EVENT_TYPES)
    assert isinstance(event, MeetingUpdated)
    assert event.id in result.stdout.split()  # the id is printed, for `notify status` and scripts
    assert event.data.meeting.meeting_id == "m-2027-5a-foreldremote"
    assert event.data.meeting.location == "Gymsalen, Bjølsen skole"  # the sample moves the meeting
    assert record.key == b"m-2027-5a-foreldremote"  # keyed by meeting: its events stay in order
    assert await records_on(kafka_bootstrap, topics.meeting_created) == []


async def test_an_event_from_a_file_is_published_in_binary_mode_unchanged(kafka_bootstrap: str, tmp_path: Path) -> None:
    topics = await fresh_topics(kafka_bootstrap)
    written = samples.meeting_created(event_id="01JD8X4K2M7Q9W3E5R6T8Y0U1I")
    path = tmp_path / "meeting-created.json"
    path.write_text(written.model_dump_json(), encoding="utf-8")

    result = await asyncio.to_thread(notify, kafka_bootstrap, topics, str(path), "--mode", "binary")

    assert result.exit_code == 0, result.output
    (record,) = await records_on(kafka_bootstrap, topics.meeting_created)
    headers = dict(record.headers)
    assert headers["ce_id"] == b"01JD8X4K2M7Q9W3E5R6T8Y0U1I"
    assert headers["ce_type"] == b"meeting.created"
    event = decode_event(record.value, record.headers, INPUT_EVENT_TYPES)
    assert isinstance(event, MeetingCreated)
    assert event == written


async def test_a_file_that_breaks_the_contract_is_refused_naming_the_field_and_nothing_is_published(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topics = await fresh_topics(kafka_bootstrap)
    document = json.loads(samples.meeting_created().model_dump_json())
    del document["data"]["meeting"]["starts_at"]
    path = tmp_path / "no-start.json"
    path.write_text(json.dumps(document), encoding="utf-8")

    result = await asyncio.to_thread(notify, kafka_bootstrap, topics, str(path))

    assert result.exit_code == 2
    assert "starts_at" in result.output
    assert await records_on(kafka_bootstrap, topics.meeting_created) == []


async def test_a_file_and_a_sample_together_are_refused(kafka_bootstrap: str, tmp_path: Path) -> None:
    topics = await fresh_topics(kafka_bootstrap)
    result = await asyncio.to_thread(
        notify, kafka_bootstrap, topics, str(tmp_path / "event.json"), "--sample", "meeting.created"
    )
    assert result.exit_code == 2
    assert "give either FILE or --sample" in result.output
