"""The thin Kafka handler of development talks: validated `talks.offered` in, applied to the booking tables.

An event that breaks the contract goes to the dead-letter topic with the reason, as in every service (the shared
decoder); the offset is committed once the offer is in the database.
"""

from __future__ import annotations

from collections.abc import Callable

from faststream import AckPolicy
from faststream.kafka import KafkaRouter

from notify_responses.metrics import SERVICE
from notify_responses.talks_service import TalksService
from notify_shared.contract import TalksOffered
from notify_shared.kafka import cloudevent_decoder
from notify_shared.kafka.failure_pause import PauseOnFailure
from notify_shared.kafka.inbound import DeadLetterSink
from notify_shared.topics import Topics


def build_talks_router(
    *,
    topics: Topics,
    group_id: str,
    dead_letters: DeadLetterSink,
    service: Callable[[], TalksService],
    max_record_bytes: int,
) -> KafkaRouter:
    """One consumer of `talks.offered` in the responses service's consumer group (NACK_ON_ERROR: an offer is
    applied again after a failure; applying the same offer twice changes nothing)."""
    router = KafkaRouter()
    pause = PauseOnFailure()

    async def on_talks_offered(event: TalksOffered) -> None:
        await pause.run(lambda: service().apply_offer(event), event_id=event.id)

    router.subscriber(
        topics.talks_offered,
        group_id=group_id,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=max_record_bytes,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=cloudevent_decoder(topics=topics, service=SERVICE, dead_letters=dead_letters),
        title=f"{SERVICE}:talks",
        description="Rounds of development talks offered (or changed): the slots and who may book them.",
    )(on_talks_offered)
    return router
