"""The thin Kafka handler: validated messages and absences in, handed to the digest service."""

from __future__ import annotations

from faststream import AckPolicy
from faststream.kafka import KafkaRouter

from notify_digest.runtime import Runtime
from notify_shared import topics as event_types
from notify_shared.contract import AbsenceNoted, MessagePosted
from notify_shared.kafka import EventTimeLimit, cloudevent_decoder
from notify_shared.kafka.failure_pause import PauseOnFailure
from notify_shared.kafka.inbound import DeadLetterSink
from notify_shared.topics import Topics

SERVICE = "digest"
CONSUMED = (event_types.MESSAGE_POSTED, event_types.ABSENCE_NOTED)


def build_router(
    *,
    topics: Topics,
    group_id: str,
    dead_letters: DeadLetterSink,
    runtime: Runtime,
    max_record_bytes: int,
    event_time: EventTimeLimit,
) -> KafkaRouter:
    """One consumer for message.posted and absence.noted; the offset is committed after the event is stored or
    sent (NACK_ON_ERROR), and handling the same event twice changes nothing."""
    router = KafkaRouter()
    pause = PauseOnFailure()

    async def on_event(event: MessagePosted | AbsenceNoted) -> None:
        await pause.run(lambda: runtime.service.handle(event), event_id=event.id)

    router.subscriber(
        *(topics.for_event_type(event_type) for event_type in CONSUMED),
        group_id=group_id,
        auto_offset_reset="earliest",
        # Bounds what one fetch brings per partition (KAFKA_MAX_RECORD_BYTES; see notify_shared.kafka.decompression).
        max_partition_fetch_bytes=max_record_bytes,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=cloudevent_decoder(topics=topics, service=SERVICE, dead_letters=dead_letters, event_time=event_time),
        title=f"{SERVICE}:messages-and-absences",
        description="Messages posted and absences noted: instant notices, or items for the next digest.",
    )(on_event)
    return router
