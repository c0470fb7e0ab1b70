"""Publishing an accepted event to Kafka exactly as `notify publish` does: structured mode, on the topic named
after its type, keyed by the meeting or pupil id (`notify_shared.contract.partition_key`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from faststream.kafka import KafkaBroker

from notify_shared.contract import CloudEvent, encode_structured, partition_key
from notify_shared.topics import Topics


@dataclass(frozen=True)
class KafkaRecord:
    """What goes to Kafka for one event."""

    topic: str
    key: bytes
    value: bytes
    headers: dict[str, str]

    @property
    def digest(self) -> str:
        """SHA-256 of the value: the same event id posted with other content is told apart by it."""
        return hashlib.sha256(self.value).hexdigest()


@dataclass(frozen=True)
class Published:
    partition: int | None
    offset: int | None


def record_for(event: CloudEvent, topics: Topics) -> KafkaRecord:
    """The record for `event`. The value is the validated model re-encoded, like `notify publish` sends it:
    contact points normalised, single-line fields folded, unknown extension attributes kept."""
    value, headers = encode_structured(event)
    return KafkaRecord(
        topic=topics.for_event_type(event.type),
        key=partition_key(event),
        value=value,
        headers={name: raw.decode() for name, raw in headers},
    )


class KafkaPublisher:
    """Publishes records through a started broker (`build_broker`: acks=all)."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def publish(self, record: KafkaRecord) -> Published:
        """Return once every in-sync replica has the record; raise if Kafka refuses it."""
        metadata = await self._broker.publish(record.value, record.topic, key=record.key, headers=record.headers)
        return Published(getattr(metadata, "partition", None), getattr(metadata, "offset", None))
