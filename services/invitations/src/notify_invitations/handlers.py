"""The thin Kafka handler: validated meeting events in, handed to the invitations service."""

from __future__ import annotations

from faststream import AckPolicy
from faststream.kafka import KafkaRouter

from notify_invitations.runtime import Runtime
from notify_shared import topics as event_types
from notify_shared.contract import MeetingCancelled, MeetingCreated, MeetingUpdated
from notify_shared.kafka import cloudevent_decoder
from notify_shared.kafka.failure_pause import PauseOnFailure
from notify_shared.kafka.inbound import DeadLetterSink
from notify_shared.topics import Topics

SERVICE = "invitations"
CONSUMED = (event_types.MEETING_CREATED, event_types.MEETING_UPDATED, event_types.MEETING_CANCELLED)


def build_router(*, topics: Topics, group_id: str, dead_letters: DeadLetterSink, runtime: Runtime) -> KafkaRouter:
    """One consumer for meeting.created / updated / cancelled, so the service joins its group once.

    NACK_ON_ERROR: the offset is committed only after the handler returned, i.e. after the ledger recorded every
    outcome; an infrastructure error leaves it uncommitted so the event is read again (at-least-once in, and the
    ledger makes it effectively-once out). Invalid records never raise: the decoder dead-letters and acks them.
    """
    router = KafkaRouter()
    pause = PauseOnFailure()

    async def on_meeting_event(event: MeetingCreated | MeetingUpdated | MeetingCancelled) -> None:
        await pause.run(lambda: runtime.service.handle(event), event_id=event.id)

    router.subscriber(
        *(topics.for_event_type(event_type) for event_type in CONSUMED),
        group_id=group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=cloudevent_decoder(topics=topics, service=SERVICE, dead_letters=dead_letters),
        title=f"{SERVICE}:meetings",
        description="Meetings scheduled, changed or called off: invitations, updates and cancellations.",
    )(on_meeting_event)
    return router
