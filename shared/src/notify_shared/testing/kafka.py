"""Kafka helpers for tests against the real broker: topics, publishing, reading, committed offsets.

Each takes `client_options`, the aiokafka security options of `notify_shared.kafka.kafka_client_options`, for a
broker that wants TLS or SASL; without them it speaks PLAINTEXT.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import RecordMetadata

from notify_shared.contract import ALL_EVENT_TYPES, CloudEvent, encode_binary, encode_structured, partition_key
from notify_shared.testing.waiting import wait_until
from notify_shared.topics import Topics


async def create_topics(
    bootstrap: str, names: Iterable[str], partitions: int = 3, *, client_options: Mapping[str, Any] | None = None
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(client_options or {}))
    await admin.start()
    try:
        for name in names:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def create_all_topics(
    bootstrap: str, topics: Topics, partitions: int = 3, *, client_options: Mapping[str, Any] | None = None
) -> None:
    names = [topics.for_event_type(name) for name in ALL_EVENT_TYPES]
    await create_topics(bootstrap, names, partitions, client_options=client_options)


class EventPublisher:
    """Publishes events as an admin system would, in either CloudEvents mode, or raw bytes."""

    def __init__(self, bootstrap: str, topics: Topics, *, client_options: Mapping[str, Any] | None = None) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, enable_idempotence=True, **(client_options or {})
        )
        self._topics = topics

    async def __aenter__(self) -> EventPublisher:
        await self._producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._producer.stop()

    async def publish(self, event: CloudEvent, *, binary: bool = False) -> RecordMetadata:
        value, headers = encode_binary(event) if binary else encode_structured(event)
        return await self._producer.send_and_wait(
            self._topics.for_event_type(event.type), value, key=partition_key(event), headers=headers
        )

    async def publish_raw(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> RecordMetadata:
        return await self._producer.send_and_wait(topic, value, key=key, headers=headers or [])


class TopicReader:
    """Reads every JSON record of one topic from the beginning, as the tests go."""

    def __init__(self, bootstrap: str, topic: str, *, client_options: Mapping[str, Any] | None = None) -> None:
        self._consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", **(client_options or {})
        )
        self.records: list[dict[str, Any]] = []

    async def __aenter__(self) -> TopicReader:
        await self._consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()

    async def poll(self) -> list[dict[str, Any]]:
        batches = await self._consumer.getmany(timeout_ms=100)
        for records in batches.values():
            self.records.extend(json.loads(record.value) for record in records if record.value)
        return self.records

    async def read_to_end(self, *, within: float = 60.0) -> list[dict[str, Any]]:
        """Every record up to the end of each partition as it is now."""
        await wait_until(lambda: bool(self._consumer.assignment()), within=within, what="partitions assigned")
        partitions = list(self._consumer.assignment())
        ends = await self._consumer.end_offsets(partitions)

        async def at_the_end() -> bool:
            await self.poll()
            positions = [await self._consumer.position(partition) for partition in partitions]
            return all(position >= ends[partition] for position, partition in zip(positions, partitions, strict=True))

        await wait_until(at_the_end, within=within, interval=0.01, what="the topic read to its end")
        return self.records


async def committed_offset(
    bootstrap: str, group_id: str, topic: str, partition: int, *, client_options: Mapping[str, Any] | None = None
) -> int:
    """The group's committed offset on one partition (-1 when it has committed nothing)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False, **(client_options or {})
    )
    await consumer.start()
    try:
        offset = await consumer.committed(TopicPartition(topic, partition))
    finally:
        await consumer.stop()
    return -1 if offset is None else offset


async def publish_applied(bootstrap: str, topics: Topics, group_id: str, *events: CloudEvent) -> None:
    """Publish `events` one by one, each applied before the next: the service's consumer group has committed its
    offset past it, i.e. stored or sent what it means."""
    async with EventPublisher(bootstrap, topics) as publisher:
        for event in events:
            record = await publisher.publish(event)

            async def applied(
                topic: str = record.topic, partition: int = record.partition, at: int = record.offset
            ) -> bool:
                return await committed_offset(bootstrap, group_id, topic, partition) > at

            await wait_until(applied, what=f"{event.type} to be applied")
