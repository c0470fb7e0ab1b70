"""Turning consumed records into validated events, and dead-lettering the ones that cannot be.

The decoder runs inside FastStream's acknowledgement scope: a rejected record is published to the dead-letter
topic and then acknowledged (`AckMessage`), so one bad record never blocks its partition and nothing is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from faststream.exceptions import AckMessage
from faststream.message import StreamMessage

from notify_shared.contract import (
    INPUT_EVENT_TYPES,
    CloudEvent,
    EventRejected,
    NotificationDeadLettered,
    decode_event,
)
from notify_shared.kafka.dead_letters import dead_letter_for
from notify_shared.topics import Topics

logger = logging.getLogger(__name__)

DeadLetterSink = Callable[[NotificationDeadLettered], Awaitable[None]]
Decoder = Callable[[StreamMessage[Any]], Awaitable[CloudEvent]]


def decode_for_topic(value: bytes | None, headers: Any, event_type: str) -> CloudEvent:
    """Decode a record from the topic of `event_type`; any other type there is rejected as `topic_mismatch`."""
    event = decode_event(value, headers or (), INPUT_EVENT_TYPES)
    if event.type != event_type:
        raise EventRejected(
            "topic_mismatch", [f"a {event.type!r} event was published on the {event_type!r} topic"], event.id
        )
    return event


def cloudevent_decoder(*, topics: Topics, service: str, dead_letters: DeadLetterSink) -> Decoder:
    """A FastStream decoder that yields the validated event, of the type its topic is named after, or
    dead-letters the record."""

    async def decode(message: StreamMessage[Any]) -> CloudEvent:
        record = message.raw_message
        try:
            return decode_for_topic(record.value, record.headers, topics.event_type_of(record.topic))
        except EventRejected as rejection:
            await dead_letters(dead_letter_for(record, rejection, service=service))
            logger.warning(
                "dead-lettered record %s[%d]@%d (event id %s): %s",
                record.topic,
                record.partition,
                record.offset,
                rejection.event_id,
                rejection.reason,
            )
            raise AckMessage from None

    return decode
