"""The thin Kafka handler: validated meeting events in, remembered so that the invited guardians can answer."""

from __future__ import annotations

from collections.abc import Callable

from faststream import AckPolicy
from faststream.kafka import KafkaRouter

from notify_responses.metrics import SERVICE
from notify_responses.service import ResponsesService
from notify_shared import topics as event_types
from notify_shared.contract import MeetingCancelled, MeetingCreated, MeetingUpdated
from notify_shared.kafka import cloudevent_decoder
from notify_shared.kafka.failure_pause import PauseOnFailure
from notify_shared.kafka.inbound import DeadLetterSink
from notify_shared.topics import Topics

CONSUMED = (event_types.MEETING_CREATED, event_types.MEETING_UPDATED, event_types.MEETING_CANCELLED)


def build_router(
    *,
    topics: Topics,
    group_id: str,
    dead_letters: DeadLetterSink,
    service: Callable[[], ResponsesService],
    max_record_bytes: int,
) -> KafkaRouter:
    """One consumer for the meeting topics, in the responses service's own consumer group.

    The offset is committed once the meeting is in the database (NACK_ON_ERROR); applying an event again
    changes nothing. `service` gives the started service (it exists only once the database is open).
    """
    router = KafkaRouter()
    pause = PauseOnFailure()

    async def on_meeting_event(event: MeetingCreated | MeetingUpdated | MeetingCancelled) -> None:
        await pause.run(lambda: service().apply(event), event_id=event.id)

    router.subscriber(
        *(topics.for_event_type(event_type) for event_type in CONSUMED),
        group_id=group_id,
        auto_offset_reset="earliest",
        # Bounds what one fetch brings per partition (KAFKA_MAX_RECORD_BYTES; see notify_shared.kafka.decompression).
        max_partition_fetch_bytes=max_record_bytes,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=cloudevent_decoder(topics=topics, service=SERVICE, dead_letters=dead_letters),
        title=f"{SERVICE}:meetings",
        description="Meetings scheduled, changed or called off: who may answer, and until when.",
    )(on_meeting_event)
    return router
