"""From a posted body to a published event, once per event id: the logic behind `POST /v1/events`, free of HTTP.

The body is decoded and validated by `notify_shared.contract.decode_event`, the very function the services run
on every Kafka record, so the ingest can never accept an event that the services would dead-letter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.exc import SQLAlchemyError

from notify_ingest.publishing import KafkaRecord, Published, record_for
from notify_ingest.store import AcceptedEvents, AcceptedId, ClaimKind
from notify_shared.contract import CLOUDEVENTS_JSON, INPUT_EVENT_TYPES, CloudEvent, EventRejected, School, decode_event
from notify_shared.kafka.event_time import TIME_IN_FUTURE, EventTimeLimit
from notify_shared.topics import Topics

logger = logging.getLogger(__name__)

ACCEPTED_MEDIA_TYPES = (CLOUDEVENTS_JSON, "application/json")

# How often a request waits to see another replica's publish of the same id finish.
_IN_FLIGHT_POLL_SECONDS = 0.1


class Outcome(StrEnum):
    """How a request ended; also the `outcome` label of `notify_ingest_requests_total`."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    INVALID = "invalid"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"
    NOT_ALLOWED = "not_allowed"
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with the event: the field's path (None for the body as a whole) and what is wrong."""

    field: str | None
    message: str


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    event_id: str | None = None
    event_type: str | None = None
    reason: str | None = None
    """For `INVALID`: the rejection code the services would dead-letter it with (e.g. `schema_violation`)."""
    problems: tuple[FieldProblem, ...] = ()
    retry_after_seconds: float | None = None
    """For `UNAVAILABLE` and `RATE_LIMITED`: when a retry may succeed."""


PublishFunction = Callable[[KafkaRecord], Awaitable[Published]]
PolicyCheck = Callable[[CloudEvent], Sequence[FieldProblem]]
"""What the deployment does not allow in a valid event of the caller's school (`notify_ingest.policy`)."""


class Ingestor:
    """Validates posted events and publishes each event id once, whatever the number and timing of requests."""

    def __init__(
        self,
        *,
        store: AcceptedEvents,
        publish: PublishFunction,
        topics: Topics,
        publish_timeout_seconds: float,
        policy: PolicyCheck | None = None,
        event_time: EventTimeLimit | None = None,
    ) -> None:
        self._store = store
        self._policy = policy
        # The services refuse events dated too far ahead (dead letter); so does the ingest, with a 400.
        self._event_time = event_time or EventTimeLimit()
        self._publish = publish
        self._topics = topics
        self._publish_timeout = publish_timeout_seconds
        self._locks = _KeyedLocks()

    async def ingest(self, body: bytes, content_type: str | None, *, school_id: str) -> Result:
        """Handle one posted body from the school `school_id` (already authenticated by its key)."""
        if _media_type(content_type) not in ACCEPTED_MEDIA_TYPES:
            return Result(Outcome.UNSUPPORTED_MEDIA_TYPE)
        try:
            event = decode_event(body, [("content-type", (content_type or "").encode())], INPUT_EVENT_TYPES)
            self._event_time.check(event)
        except EventRejected as rejection:
            # The reason code and the count only: a message may quote the client's input.
            logger.info(
                "refused event %r from school %s: %s (%d problems)",
                None if rejection.event_id is None else rejection.event_id[:200],
                school_id,
                rejection.reason,
                len(rejection.errors),
            )
            return Result(
                Outcome.INVALID,
                event_id=rejection.event_id,
                reason=rejection.reason,
                problems=tuple(_problem(text, rejection.reason) for text in rejection.errors),
            )
        if _school_of(event) != school_id:
            logger.warning("refused event %s: the key of school %s cannot post for another school", event.id, school_id)
            return Result(Outcome.FORBIDDEN, event_id=event.id, event_type=event.type)
        if self._policy is not None and (problems := tuple(self._policy(event))):
            logger.warning("refused event %s from school %s: %d fields not allowed", event.id, school_id, len(problems))
            return Result(Outcome.NOT_ALLOWED, event_id=event.id, event_type=event.type, problems=problems)
        try:
            return await self._publish_once(event, record_for(event, self._topics), school_id)
        except SQLAlchemyError as error:
            logger.warning("event %s: the database failed (%s)", event.id, type(error).__name__)
            return Result(Outcome.UNAVAILABLE, event_id=event.id, event_type=event.type, retry_after_seconds=1.0)

    async def _publish_once(self, event: CloudEvent, record: KafkaRecord, school_id: str) -> Result:
        # Requests for one id in this process take turns: the second finds the first's publish done (a duplicate)
        # or released (it publishes). Between replicas the claim in the database decides.
        accepted = AcceptedId(school_id, event.source, event.id)
        async with self._locks.hold(accepted):
            deadline = time.monotonic() + self._publish_timeout
            while True:
                claim = await self._store.claim(
                    accepted, event_type=event.type, digest=record.digest, topic=record.topic
                )
                if claim.kind is not ClaimKind.IN_FLIGHT or time.monotonic() >= deadline:
                    break
                # Another replica is publishing it and will be done within its publish timeout; or it died, and
                # its lease runs out.
                await asyncio.sleep(_IN_FLIGHT_POLL_SECONDS)
            match claim.kind:
                case ClaimKind.PUBLISH:
                    return await self._publish_claimed(event, record, accepted)
                case ClaimKind.PUBLISHED:
                    logger.info("event %s from school %s is a duplicate; not published again", event.id, school_id)
                    return Result(Outcome.DUPLICATE, event_id=event.id, event_type=claim.event_type)
                case ClaimKind.CONFLICT:
                    logger.warning(
                        "refused event %s from school %s: its id was accepted with other content", event.id, school_id
                    )
                    return Result(Outcome.CONFLICT, event_id=event.id, event_type=claim.event_type)
                case ClaimKind.IN_FLIGHT:
                    logger.warning("event %s: another request still holds it; the client should retry", event.id)
                    return Result(
                        Outcome.UNAVAILABLE,
                        event_id=event.id,
                        event_type=event.type,
                        retry_after_seconds=max(claim.retry_after_seconds, 1.0),
                    )

    async def _publish_claimed(self, event: CloudEvent, record: KafkaRecord, accepted: AcceptedId) -> Result:
        try:
            async with asyncio.timeout(self._publish_timeout):
                published = await self._publish(record)
        except Exception as error:  # any failure means Kafka did not confirm it: the client must retry
            # A publish cut off by the timeout may still reach Kafka later; a retry then publishes the event a
            # second time, which consumers absorb (they dedupe by CloudEvents id).
            logger.warning("event %s: Kafka did not confirm it (%s)", event.id, type(error).__name__)
            await self._store.release(accepted)
            return Result(Outcome.UNAVAILABLE, event_id=event.id, event_type=event.type, retry_after_seconds=1.0)
        logger.info(
            "published event %s (%s) from school %s to %s[%s]@%s",
            event.id,
            event.type,
            accepted.school_id,
            record.topic,
            published.partition,
            published.offset,
        )
        try:
            await self._store.mark_published(accepted, partition=published.partition, offset=published.offset)
        except SQLAlchemyError as error:
            # It is on Kafka, so the client hears "accepted". The id stays pending: a later post of it would
            # publish it again after the lease, which the consumers absorb.
            logger.warning("event %s is published but not marked so (%s)", event.id, type(error).__name__)
        return Result(Outcome.ACCEPTED, event_id=event.id, event_type=event.type)


def _media_type(content_type: str | None) -> str | None:
    return content_type.split(";", 1)[0].strip().lower() if content_type else None


def _school_of(event: CloudEvent) -> str:
    # Every input event's data has a `school` block (INPUT_EVENT_TYPES).
    school = getattr(getattr(event, "data", None), "school", None)
    assert isinstance(school, School), f"{event.type} carries no school block"
    return school.id


def _problem(text: str, reason: str) -> FieldProblem:
    # `describe_validation_error` writes schema violations as "<field path>: <message>", and `EventTimeLimit` its
    # one problem as "time: <message>"; other rejections are about the body as a whole.
    if reason in ("schema_violation", TIME_IN_FUTURE):
        field, separator, message = text.partition(": ")
        if separator:
            return FieldProblem(None if field == "(event)" else field, message)
    return FieldProblem(None, text)


class _KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[AcceptedId, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: AcceptedId) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
