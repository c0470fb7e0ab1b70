"""Setting aside records that cannot be used, whole, with the reason, on the dead-letter topic."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from notify_shared.contract import DeadLetter, DeadLetterHeader, EventRejected, NotificationDeadLettered
from notify_shared.ids import new_event_id, service_source


class ConsumedRecord(Protocol):
    """The parts of an aiokafka ConsumerRecord a dead letter keeps."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Any


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _writable(key: str) -> str:
    # A header key is text; one with a lone surrogate (which no UTF-8 decoder yields, but a client library
    # handing on its own strings might) could not be written as JSON, and the dead letter would never go out.
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def dead_letter_for(
    record: ConsumedRecord,
    rejection: EventRejected,
    *,
    service: str,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> NotificationDeadLettered:
    """A dead-letter event holding the original bytes and headers, so `notify dlq replay` can resend them."""
    headers: Iterable[tuple[str, bytes | None]] = record.headers or ()
    now = clock()
    return NotificationDeadLettered(
        id=new_event_id(),
        source=service_source(service),
        time=now,
        data=DeadLetter(
            reason=rejection.reason,
            errors=rejection.errors,
            service=service,
            source_event_id=rejection.event_id,
            original_topic=record.topic,
            original_partition=record.partition,
            original_offset=record.offset,
            original_timestamp_ms=record.timestamp,
            original_key_base64=_b64(record.key) if record.key is not None else None,
            original_value_base64=_b64(record.value or b""),
            original_headers=tuple(
                DeadLetterHeader(key=_writable(key), value_base64=_b64(value or b"")) for key, value in headers
            ),
            dead_lettered_at=now,
        ),
    )
