"""`notify dlq`: an operator lists dead letters, reads one in full, and replays it onto its original topic."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from typer.testing import CliRunner, Result

from notify_shared.cli import app
from notify_shared.cli.dlq import REPLAYED_FROM_HEADER, topic_partitions
from notify_shared.contract import INPUT_EVENT_TYPES, EventRejected, decode_event, encode_structured
from notify_shared.kafka import dead_letter_for
from notify_shared.testing.kafka import EventPublisher, create_all_topics
from notify_shared.topics import Topics

pytestmark = pytest.mark.kafka

BROKEN_VALUE = b'{"specversion": "1.0", "type": "meeting.created", "id": "01JD8X4K2M7Q9W3E5R6T8Y0U1I", '
ORIGINAL_KEY = b"m-2026-7b-foreldremote"
ORIGINAL_HEADERS = [("content-type", b"application/cloudevents+json"), ("traceparent", b"00-abc-def-01")]


@dataclass
class Consumed:
    """What a service's consumer saw: the broken record, where it was."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Any


@dataclass(frozen=True)
class DeadLettered:
    topics: Topics
    bootstrap: str
    position: str
    """partition:offset of the dead letter on the dead-letter topic."""
    original_topic: str
    original_partition: int
    original_offset: int
    dead_letter_id: str


@pytest.fixture
async def dead_lettered(kafka_bootstrap: str) -> DeadLettered:
    """A malformed record on `meeting.created`, and the dead letter the invitations service wrote for it."""
    topics = Topics(f"cli-{uuid.uuid4().hex[:8]}.")
    await create_all_topics(kafka_bootstrap, topics)
    async with EventPublisher(kafka_bootstrap, topics) as publisher:
        original = await publisher.publish_raw(
            topics.meeting_created, BROKEN_VALUE, key=ORIGINAL_KEY, headers=ORIGINAL_HEADERS
        )
        consumed = Consumed(
            topics.meeting_created,
            original.partition,
            original.offset,
            original.timestamp,
            ORIGINAL_KEY,
            BROKEN_VALUE,
            ORIGINAL_HEADERS,
        )
        with pytest.raises(EventRejected) as rejected:
            decode_event(consumed.value, consumed.headers, INPUT_EVENT_TYPES)
        dead_letter = dead_letter_for(consumed, rejected.value, service="invitations")
        value, headers = encode_structured(dead_letter)
        written = await publisher.publish_raw(topics.dead_letter, value, key=b"invitations", headers=headers)
    return DeadLettered(
        topics,
        kafka_bootstrap,
        f"{written.partition}:{written.offset}",
        topics.meeting_created,
        original.partition,
        original.offset,
        dead_letter.id,
    )


def notify(scene: DeadLettered, *args: str) -> Result:
    environment = {"COLUMNS": "250", "KAFKA_BOOTSTRAP_SERVERS": scene.bootstrap, "TOPIC_PREFIX": scene.topics.prefix}
    return CliRunner().invoke(app, list(args), env=environment)


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record on `topic` now, all partitions, oldest first per partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic)]
        consumer.assign(assigned)
        ends = await consumer.end_offsets(assigned)
        await consumer.seek_to_beginning(*assigned)
        records: list[Any] = []
        async with asyncio.timeout(10):
            while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def test_list_shows_where_the_dead_letter_came_from_and_why(dead_lettered: DeadLettered) -> None:
    result = await asyncio.to_thread(notify, dead_lettered, "dlq", "list")

    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.output.splitlines() if line.startswith("│ ")]
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    original = f"{dead_lettered.original_topic}/{dead_lettered.original_partition}/{dead_lettered.original_offset}"
    assert cells[0] == dead_lettered.position
    assert cells[2:6] == ["invitations", "malformed_json", original, ""]
    assert cells[6]  # the first error
    assert "1 of 1 dead letter(s)" in result.output


async def test_show_prints_the_dead_letter_in_full_with_the_original_value(dead_lettered: DeadLettered) -> None:
    for wanted in (dead_lettered.position, dead_lettered.dead_letter_id):
        result = await asyncio.to_thread(notify, dead_lettered, "dlq", "show", wanted)

        assert result.exit_code == 0, result.output
        assert "malformed_json" in result.output
        assert "traceparent: 00-abc-def-01" in result.output
        assert f"key: {ORIGINAL_KEY.decode()}" in result.output
        assert BROKEN_VALUE.decode() in result.output

    missing = await asyncio.to_thread(notify, dead_lettered, "dlq", "show", "no-such-id")
    assert missing.exit_code == 1


async def test_replay_puts_the_original_bytes_back_once_with_a_replay_header(dead_lettered: DeadLettered) -> None:
    dry = await asyncio.to_thread(notify, dead_lettered, "dlq", "replay", "--all", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"would replay {dead_lettered.position} to {dead_lettered.original_topic}" in dry.output
    assert len(await read_topic(dead_lettered.bootstrap, dead_lettered.original_topic)) == 1

    # The same dead letter named twice, once as partition:offset: one run replays it once.
    offset_only = dead_lettered.position.split(":")[1]
    result = await asyncio.to_thread(
        notify,
        dead_lettered,
        "dlq",
        "replay",
        "--offset",
        dead_lettered.position,
        "--offset",
        dead_lettered.position,
        "--offset",
        offset_only,
    )

    assert result.exit_code == 0, result.output
    assert "1 replayed, 2 skipped (already replayed in this run)" in result.output
    original, replayed = await read_topic(dead_lettered.bootstrap, dead_lettered.original_topic)
    assert (original.partition, original.offset) == (dead_lettered.original_partition, dead_lettered.original_offset)
    assert replayed.value == original.value == BROKEN_VALUE
    assert replayed.key == original.key == ORIGINAL_KEY
    assert list(replayed.headers) == [
        *ORIGINAL_HEADERS,
        (REPLAYED_FROM_HEADER, dead_lettered.position.encode()),
    ]


async def test_replay_wants_all_or_offsets(dead_lettered: DeadLettered) -> None:
    result = await asyncio.to_thread(notify, dead_lettered, "dlq", "replay")

    assert result.exit_code == 2
    assert len(await read_topic(dead_lettered.bootstrap, dead_lettered.original_topic)) == 1


def notify_at_80_columns(scene: DeadLettered, *args: str) -> Result:
    # CliRunner's output is a pipe, as with `notify dlq list | less`; 80 columns is a default terminal.
    environment = {"COLUMNS": "80", "KAFKA_BOOTSTRAP_SERVERS": scene.bootstrap, "TOPIC_PREFIX": scene.topics.prefix}
    return CliRunner().invoke(app, list(args), env=environment)


async def write_dead_letter(scene: DeadLettered, consumed: Consumed) -> str:
    """A dead letter, as a service would write it, for a record it read as `consumed`; its partition:offset."""
    with pytest.raises(EventRejected) as rejected:
        decode_event(consumed.value, consumed.headers, INPUT_EVENT_TYPES)
    dead_letter = dead_letter_for(consumed, rejected.value, service="invitations")
    value, headers = encode_structured(dead_letter)
    async with EventPublisher(scene.bootstrap, scene.topics) as publisher:
        written = await publisher.publish_raw(scene.topics.dead_letter, value, key=b"invitations", headers=headers)
    return f"{written.partition}:{written.offset}"


async def test_list_at_80_columns_or_in_a_pipe_prints_every_id_whole_on_its_line(
    dead_lettered: DeadLettered,
) -> None:
    result = await asyncio.to_thread(notify_at_80_columns, dead_lettered, "dlq", "list")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines if not line.startswith("first error"))
    original = f"{dead_lettered.original_topic}/{dead_lettered.original_partition}/{dead_lettered.original_offset}"
    assert [line.split() for line in lines if line.startswith(("position", "service", "reason", "original"))] == [
        ["position", dead_lettered.position],
        ["service", "invitations"],
        ["reason", "malformed_json"],
        ["original", original],
    ]
    assert "1 of 1 dead letter(s)" in result.output


async def test_list_as_json_says_where_each_dead_letter_came_from_without_the_original_value(
    dead_lettered: DeadLettered,
) -> None:
    result = await asyncio.to_thread(notify, dead_lettered, "dlq", "list", "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["topic"] == dead_lettered.topics.dead_letter
    assert document["total"] == 1
    (letter,) = document["dead_letters"]
    assert letter["position"] == dead_lettered.position
    assert letter["id"] == dead_lettered.dead_letter_id
    assert (letter["service"], letter["reason"]) == ("invitations", "malformed_json")
    assert (letter["original_topic"], letter["original_partition"], letter["original_offset"]) == (
        dead_lettered.original_topic,
        dead_lettered.original_partition,
        dead_lettered.original_offset,
    )
    assert letter["errors"]
    assert "01JD8X4K2M7Q9W3E5R6T8Y0U1I" not in result.output  # from the original value


async def test_show_escapes_terminal_control_sequences_from_the_record(dead_lettered: DeadLettered) -> None:
    # Set the clipboard (OSC 52), clear the screen, hide text behind a carriage return and a right-to-left override.
    hostile = b'{"note": "\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b[2J\rfake\xe2\x80\xae"'
    position = await write_dead_letter(
        dead_lettered,
        Consumed(dead_lettered.topics.meeting_created, 0, 99, 0, b"k\x1b[31m", hostile, [("x-trace", b"\x1b[8m")]),
    )

    result = await asyncio.to_thread(notify, dead_lettered, "dlq", "show", position)

    assert result.exit_code == 0, result.output
    assert not any(character in result.output for character in "\x1b\x07\r\u202e")
    assert r'{"note": "\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b[2J\x0dfake\u202e"' in result.output
    assert r"key: k\x1b[31m" in result.output
    assert r"x-trace: \x1b[8m" in result.output


async def test_replay_publishes_only_to_this_deployments_input_topics(dead_lettered: DeadLettered) -> None:
    foreign_topics = ("notification.status", "other-school.meeting.created", dead_lettered.topics.notification_status)
    foreign = [
        await write_dead_letter(dead_lettered, Consumed(topic, 0, 7, 0, None, BROKEN_VALUE, ORIGINAL_HEADERS))
        for topic in foreign_topics
    ]

    dry = await asyncio.to_thread(notify, dead_lettered, "dlq", "replay", "--all", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"would replay {dead_lettered.position} to {dead_lettered.original_topic}" in dry.output
    for position, topic in zip(foreign, foreign_topics, strict=True):
        assert f"would refuse {position} to {topic}" in dry.output

    result = await asyncio.to_thread(notify, dead_lettered, "dlq", "replay", "--all")

    assert result.exit_code == 1
    assert "1 replayed, 0 skipped (already replayed in this run), 3 refused" in result.output
    assert all(f"refused {position}: its original topic" in result.output for position in foreign)
    assert len(await read_topic(dead_lettered.bootstrap, dead_lettered.original_topic)) == 2
    assert await read_topic(dead_lettered.bootstrap, dead_lettered.topics.notification_status) == []
