"""The Kafka handler: validated meeting events in, taken on for the invitations service, several at once."""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage

from notify_invitations.runtime import Runtime
from notify_shared import topics as event_types
from notify_shared.contract import MeetingCancelled, MeetingCreated, MeetingUpdated
from notify_shared.kafka import EventTimeLimit, cloudevent_decoder
from notify_shared.kafka.inbound import DeadLetterSink
from notify_shared.kafka.keyed_concurrency import KeyedConcurrency
from notify_shared.topics import Topics

SERVICE = "invitations"
CONSUMED = (event_types.MEETING_CREATED, event_types.MEETING_UPDATED, event_types.MEETING_CANCELLED)


def build_router(
    *,
    topics: Topics,
    group_id: str,
    dead_letters: DeadLetterSink,
    runtime: Runtime,
    event_time: EventTimeLimit,
    events: KeyedConcurrency,
    max_record_bytes: int,
) -> KafkaRouter:
    """One consumer for meeting.created / updated / cancelled, so the service joins its group once.

    The handler only takes an event on; `events` runs it alongside others (each meeting's events in order) and
    commits a partition's offset only up to the first event not yet handled to the end, i.e. after the ledger
    recorded every outcome of all events before it (at-least-once in; the ledger makes it effectively-once
    out). Invalid records are dead-lettered by the decoder and taken on as done.
    """
    router = KafkaRouter()

    async def skip_rejected(message: StreamMessage[Any]) -> None:
        record = message.raw_message
        await events.submit(_partition_of(record), record.offset, _consumer_of(message), key=None, work=None)

    async def on_meeting_event(
        event: MeetingCreated | MeetingUpdated | MeetingCancelled, message: KafkaMessage
    ) -> None:
        record: Any = message.raw_message  # one ConsumerRecord: this subscriber does not take batches
        await events.submit(
            _partition_of(record),
            record.offset,
            _consumer_of(message),
            key=f"{event.data.school.id}/{event.data.meeting.meeting_id}",
            work=lambda: runtime.service.handle(event),
            event_id=event.id,
        )

    router.subscriber(
        *(topics.for_event_type(event_type) for event_type in CONSUMED),
        group_id=group_id,
        auto_offset_reset="earliest",
        # Bounds what one fetch brings per partition (KAFKA_MAX_RECORD_BYTES; see notify_shared.kafka.decompression).
        max_partition_fetch_bytes=max_record_bytes,
        ack_policy=AckPolicy.MANUAL,
        listener=events.rebalance_listener(),
        decoder=cloudevent_decoder(
            topics=topics, service=SERVICE, dead_letters=dead_letters, on_rejected=skip_rejected, event_time=event_time
        ),
        title=f"{SERVICE}:meetings",
        description="Meetings scheduled, changed or called off: invitations, updates and cancellations.",
    )(on_meeting_event)
    return router


def _partition_of(record: Any) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


def _consumer_of(message: StreamMessage[Any]) -> Any:
    # FastStream's Kafka message carries the aiokafka consumer that read it; its commit takes explicit offsets.
    return message.consumer  # type: ignore[attr-defined]
