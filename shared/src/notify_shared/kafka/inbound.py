"""Turning consumed records into validated events, and dead-lettering the ones that cannot be.

The decoder runs inside FastStream's acknowledgement scope: a rejected record is published to the dead-letter
topic and then acknowledged (`AckMessage`), so one bad record never blocks its partition and nothing is lost.

Two things must hold for that, whatever a record holds:

- The dead letter must be publishable. It keeps the original bytes base64-encoded (a third larger), so a record
  near Kafka's 1 MiB limit would make a dead letter over it, the publish would fail, and the record would be
  read again and again. `fit_dead_letter` cuts the original down to fit, and says so in `errors`.
- FastStream must get as far as the decoder. Its Kafka parser decodes every header value as UTF-8 before the
  decoder runs, and a record with a header that is not UTF-8 (or has no value) fails there: it is neither
  dead-lettered nor acknowledged by the record itself (it is skipped, and FastStream logs the header's bytes).
  `parse_record_leniently` is a FastStream parser for the broker (`KafkaBroker(parser=...)`) that hands such
  records on, so the decoder can judge them: a CloudEvents header that is not UTF-8 is `malformed_header`,
  another header is not the decoder's business.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from aiokafka import ConsumerRecord
from faststream.exceptions import AckMessage, SkipMessage
from faststream.message import StreamMessage

from notify_shared.contract import (
    INPUT_EVENT_TYPES,
    CloudEvent,
    DeadLetterHeader,
    EventRejected,
    NotificationDeadLettered,
    decode_event,
)
from notify_shared.kafka.dead_letters import dead_letter_for
from notify_shared.kafka.decompression import check_record_size
from notify_shared.kafka.event_time import EventTimeLimit
from notify_shared.topics import Topics

logger = logging.getLogger(__name__)

DeadLetterSink = Callable[[NotificationDeadLettered], Awaitable[None]]
Decoder = Callable[[StreamMessage[Any]], Awaitable[CloudEvent]]
RecordParser = Callable[[ConsumerRecord[Any, Any]], Awaitable[StreamMessage[Any]]]

MAX_DEAD_LETTER_BYTES: Final = 900_000
"""The largest dead letter (as JSON) published: below Kafka's default 1 MiB for one record (the broker's
`message.max.bytes`, the producer's `max_request_size`), with room for the record's own overhead."""
_KEPT_HEADERS: Final = 64
_KEPT_HEADER_KEY: Final = 200
_KEPT_BYTES: Final = 1024
"""Of an oversized record, how much of each header value and of the key is kept."""


def decode_for_topic(
    value: bytes | None, headers: Any, event_type: str, event_time: EventTimeLimit | None = None
) -> CloudEvent:
    """Decode a record from the topic of `event_type`; any other type there is rejected as `topic_mismatch`,
    and one dated beyond `event_time` (default: 24 hours past the wall clock) as `time_in_future`."""
    check_record_size(headers)
    event = decode_event(value, headers or (), INPUT_EVENT_TYPES)
    if event.type != event_type:
        raise EventRejected(
            "topic_mismatch", [f"a {event.type!r} event was published on the {event_type!r} topic"], event.id
        )
    (event_time or EventTimeLimit()).check(event)
    return event


def _json_size(letter: NotificationDeadLettered) -> int:
    return len(letter.model_dump_json(exclude_none=True).encode())


def _cut(value_base64: str, keep: int) -> str:
    return base64.b64encode(base64.b64decode(value_base64)[:keep]).decode("ascii")


def fit_dead_letter(letter: NotificationDeadLettered, limit: int = MAX_DEAD_LETTER_BYTES) -> NotificationDeadLettered:
    """`letter` itself when its JSON fits in `limit` bytes; otherwise the same letter with the original record
    cut down to fit (the start of the value, the first header values and the key, each shortened), and a note in
    `errors` saying how much was kept. Such a letter still says what was wrong, but cannot be replayed as it was.
    """
    if _json_size(letter) <= limit:
        return letter
    data = letter.data
    value = base64.b64decode(data.original_value_base64)
    headers = tuple(
        DeadLetterHeader(key=header.key[:_KEPT_HEADER_KEY], value_base64=_cut(header.value_base64, _KEPT_BYTES))
        for header in data.original_headers[:_KEPT_HEADERS]
    )
    key = None if data.original_key_base64 is None else _cut(data.original_key_base64, _KEPT_BYTES)

    def shrunk(kept: bytes, said_kept: int) -> NotificationDeadLettered:
        note = (
            f"the record was too large to keep whole: the first {said_kept} of its {len(value)} value bytes, "
            f"{len(headers)} of its {len(data.original_headers)} headers and at most {_KEPT_BYTES} bytes of "
            "each header value and of the key are kept"
        )
        return letter.model_copy(
            update={
                "data": data.model_copy(
                    update={
                        "errors": (*data.errors, note),
                        "original_key_base64": key,
                        "original_value_base64": base64.b64encode(kept).decode("ascii"),
                        "original_headers": headers,
                    }
                )
            }
        )

    # The room left for the value: the letter without it, with the longest note it can have. Four base64
    # characters carry three bytes.
    room = limit - _json_size(shrunk(b"", len(value)))
    keep = max(0, min(len(value), room // 4 * 3))
    return shrunk(value[:keep], keep)


def _readable_headers(headers: Sequence[tuple[str, bytes | None]]) -> list[tuple[str, bytes]]:
    return [(key, (value or b"").decode("utf-8", "replace").encode("utf-8")) for key, value in headers]


async def parse_record_leniently(record: ConsumerRecord[Any, Any], original_parser: RecordParser) -> StreamMessage[Any]:
    """A FastStream parser (`KafkaBroker(parser=parse_record_leniently)`) that never fails on a header.

    FastStream's own parser decodes every header value as UTF-8 into `message.headers`, and raises for one
    that is not (or has no value). Here such values are decoded with replacement characters instead;
    `message.raw_message` stays the record as it came, so the decoder judges the original bytes (a `ce_*` or
    `content-type` header that is not UTF-8 is `malformed_header`) and a dead letter keeps them.
    """
    readable = _readable_headers(record.headers or ())
    if readable == [(key, value) for key, value in record.headers or ()]:
        return await original_parser(record)
    message = await original_parser(dataclasses.replace(record, headers=readable))
    message.raw_message = record
    return message


def cloudevent_decoder(
    *,
    topics: Topics,
    service: str,
    dead_letters: DeadLetterSink,
    on_rejected: Callable[[StreamMessage[Any]], Awaitable[None]] | None = None,
    event_time: EventTimeLimit | None = None,
) -> Decoder:
    """A FastStream decoder that yields the validated event, of the type its topic is named after, or
    dead-letters the record.

    A dead-lettered record is acknowledged, unless the subscriber commits its own offsets
    (`notify_shared.kafka.keyed_concurrency`): then `on_rejected` is told of it and the record is skipped, as
    FastStream's acknowledgement would commit the consumer's whole position, past events still in progress.
    `event_time` is the service's `EVENT_TIME_FUTURE_MARGIN` on its clock (default: 24 hours, wall clock).
    """

    async def decode(message: StreamMessage[Any]) -> CloudEvent:
        record = message.raw_message
        try:
            return decode_for_topic(record.value, record.headers, topics.event_type_of(record.topic), event_time)
        except EventRejected as rejection:
            await dead_letters(fit_dead_letter(dead_letter_for(record, rejection, service=service)))
            # The event id is there only when it could be a valid CloudEvent id (see EventRejected).
            logger.warning(
                "dead-lettered record %s[%d]@%d (event id %s): %s",
                record.topic,
                record.partition,
                record.offset,
                rejection.event_id,
                rejection.reason,
            )
            if on_rejected is not None:
                await on_rejected(message)
                raise SkipMessage from None
            raise AckMessage from None

    return decode
