"""The thin Kafka handler: validated meeting events in, applied to the reminder schedule."""

from __future__ import annotations

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from notify_reminders.answers import decode_answer
from notify_reminders.runtime import Runtime
from notify_shared import topics as event_types
from notify_shared.contract import MeetingCancelled, MeetingCreated, MeetingUpdated
from notify_shared.kafka import EventTimeLimit, cloudevent_decoder
from notify_shared.kafka.failure_pause import PauseOnFailure
from notify_shared.kafka.inbound import DeadLetterSink
from notify_shared.topics import Topics

SERVICE = "reminders"
CONSUMED = (event_types.MEETING_CREATED, event_types.MEETING_UPDATED, event_types.MEETING_CANCELLED)


def build_router(
    *,
    topics: Topics,
    group_id: str,
    dead_letters: DeadLetterSink,
    runtime: Runtime,
    max_record_bytes: int,
    event_time: EventTimeLimit,
) -> KafkaRouter:
    """One consumer for the meeting topics, in the reminders' own consumer group (invitations has another).

    The offset is committed after the schedule change is in the database (NACK_ON_ERROR), so a crash between
    reading and storing loses nothing; applying the same event twice changes nothing.
    """
    router = KafkaRouter()
    pause = PauseOnFailure()

    async def on_meeting_event(event: MeetingCreated | MeetingUpdated | MeetingCancelled) -> None:
        await pause.run(lambda: runtime.service.handle(event), event_id=event.id)

    router.subscriber(
        *(topics.for_event_type(event_type) for event_type in CONSUMED),
        group_id=group_id,
        auto_offset_reset="earliest",
        # Bounds what one fetch brings per partition (KAFKA_MAX_RECORD_BYTES; see notify_shared.kafka.decompression).
        max_partition_fetch_bytes=max_record_bytes,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=cloudevent_decoder(topics=topics, service=SERVICE, dead_letters=dead_letters, event_time=event_time),
        title=f"{SERVICE}:meetings",
        description="Meetings scheduled, changed or called off: reminders are scheduled, moved or cancelled.",
    )(on_meeting_event)

    # Guardians' answers (notify_reminders.answers): a "no" cancels the reminders still to come.
    async def on_answer(message: KafkaMessage) -> None:
        event = await decode_answer(message.raw_message, dead_letters=dead_letters, service=SERVICE)
        if event is not None:
            await pause.run(lambda: runtime.apply_answer(event.data), event_id=event.id)

    router.subscriber(
        topics.meeting_rsvp,
        group_id=group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=f"{SERVICE}:answers",
        description="Guardians' answers: no reminder after a no; an accepted guardian's reminder says so.",
    )(on_answer)
    return router
