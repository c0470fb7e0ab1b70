"""Hostile records in both CloudEvents modes: decoded into the event they carry, or dead-lettered with a reason.

The decoder (`notify_shared.kafka.inbound.cloudevent_decoder`, as every service runs it) either returns a valid
event of its topic's type, or publishes one dead letter and acknowledges the record; it raises nothing else.
Every dead letter can be published: it is valid JSON within Kafka's record limit, names a known reason, lists at
most a bounded number of printable errors that never repeat a value that was sent, and keeps the original
record (cut to fit, and saying so, only when the record alone is near the limit).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiokafka import ConsumerRecord
from faststream.exceptions import AckMessage
from faststream.kafka.message import KafkaMessage
from faststream.kafka.parser import AioKafkaParser
from faststream.message import StreamMessage
from hypothesis import event, given, settings
from hypothesis import strategies as st

from notify_shared.contract import (
    INPUT_EVENT_TYPES,
    CloudEvent,
    NotificationDeadLettered,
    encode_binary,
    encode_structured,
)
from notify_shared.contract.kafka_codec import MAX_ERROR_LENGTH, MAX_ERRORS
from notify_shared.kafka.inbound import MAX_DEAD_LETTER_BYTES, cloudevent_decoder, parse_record_leniently
from notify_shared.topics import Topics

from .hostile_inputs import (
    HOSTILE,
    STRUCTURED,
    Headers,
    HostileRecord,
    at_path,
    event_document,
    hostile_records,
    non_utf8_header_records,
    paths,
    sample_document,
)

TOPIC = "meeting.created"
KNOWN_REASONS = frozenset(
    {
        "malformed_json",
        "malformed_header",
        "not_a_cloudevent",
        "unsupported_content_type",
        "unknown_event_type",
        "topic_mismatch",
        "schema_violation",
        "time_in_future",
    }
)
CANARY = "Zq9kanari"
"""In every string value the mutations put into an event: an error that repeats a value would show it."""
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


@dataclass
class Record:
    """The parts of a consumed record the decoder and the dead letter use."""

    value: bytes | None
    headers: Headers
    topic: str = TOPIC
    partition: int = 0
    offset: int = 7
    timestamp: int = 1_795_680_300_000
    key: bytes | None = b"m-hostile"


@dataclass
class Outcome:
    event: CloudEvent | None
    dead_letters: list[NotificationDeadLettered]


async def _decode_all(records: list[Record]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    letters: list[NotificationDeadLettered] = []

    async def sink(letter: NotificationDeadLettered) -> None:
        letters.append(letter)

    decode = cloudevent_decoder(topics=Topics(), service="hostile", dead_letters=sink)
    for record in records:
        letters = []
        try:
            event: CloudEvent | None = await decode(cast(StreamMessage[Any], SimpleNamespace(raw_message=record)))
        except AckMessage:
            event = None
        outcomes.append(Outcome(event, letters))
    return outcomes


def decode(record: Record) -> Outcome:
    """Run the services' decoder on one record: any exception but the dead-letter path fails the test."""
    (outcome,) = asyncio.run(_decode_all([record]))
    return outcome


def assert_publishable_dead_letter(outcome: Outcome, record: Record) -> NotificationDeadLettered:
    assert outcome.event is None
    (letter,) = outcome.dead_letters
    data = letter.data
    assert data.reason in KNOWN_REASONS
    assert data.service == "hostile"
    assert (data.original_topic, data.original_partition, data.original_offset) == (TOPIC, 0, 7)
    wire, _ = encode_structured(letter)
    assert len(wire) <= MAX_DEAD_LETTER_BYTES
    assert NotificationDeadLettered.model_validate_json(wire) == letter
    cut = any(error.startswith("the record was too large") for error in data.errors)
    assert len(data.errors) <= MAX_ERRORS + 1 + cut
    for error in data.errors:
        assert len(error) <= MAX_ERROR_LENGTH or error.startswith("the record was too large")
        assert not _UNPRINTABLE.search(error), error
        assert CANARY not in error, error
    assert data.source_event_id is None or not _UNPRINTABLE.search(data.source_event_id)
    original = base64.b64decode(data.original_value_base64)
    if cut:
        assert (record.value or b"").startswith(original)
    else:
        assert original == (record.value or b"")
        kept_headers = [(header.key, base64.b64decode(header.value_base64)) for header in data.original_headers]
        assert kept_headers == [(key, value or b"") for key, value in record.headers]
    return letter


# --- building hostile records ------------------------------------------------------------------------------------

HOSTILE_VALUES: st.SearchStrategy[Any] = st.sampled_from(
    (
        None,
        True,
        0,
        -1,
        1.5,
        float("inf"),
        float("nan"),
        10**30,
        [],
        {},
        [[[[[]]]]],
        {"$ref": "#"},
        "",
        f"{CANARY}\r\nBcc: evil@example.com",
        f"{CANARY} {{{{ 7*7 }}}} <script>alert(1)</script>",
        f"{CANARY}\x00\x1b[2J",
        f"{CANARY}\ud800",
        CANARY * 6_000,
        [f"{CANARY}@example.no"],
        {"name": f"{CANARY} Nordmann"},
    )
)
HOSTILE_KEYS = st.sampled_from(
    ("", "x" * 10_000, "a\r\nb", "\ud800", "__proto__", "constructor", "näme", "💥", "data", "specversion", "k\x00")
)
HOSTILE_TYPES = st.sampled_from(
    (
        "meeting.rescheduled",
        "",
        "message.posted",
        "MEETING.CREATED",
        "meeting.created\n",
        "notification.status",
        "notification.dead-letter",
        5,
        None,
        ["meeting.created"],
        {"type": "meeting.created"},
    )
)
HOSTILE_IDS = st.sampled_from(("", "x" * 201, "a\r\nb", "a\u2028b", 5, None, "\ud800", "e-1\x85", ["e-1"]))
HOSTILE_TIMES = st.sampled_from(
    (
        "yesterday",
        "2026-13-01T00:00:00Z",
        "2026-11-20T09:00:00",
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00+14:00",
        "1899-12-31T23:59:59Z",
        1_700_000_000,
        "",
        "2026-11-20T09:00:00+25:00",
    )
)
INVALID_UTF8 = st.sampled_from((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xe2\x82"))
CONTENT_TYPES = st.sampled_from(
    (
        b"application/cloudevents+json",
        b"application/cloudevents+json; charset=utf-8",
        b"APPLICATION/JSON",
        b"text/plain",
        b"application/cloudevents-batch+json",
        b"",
        b"\xff\xfe",
        None,
    )
)


@st.composite
def spoiled_document(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with one to three things wrong: a field gone, a wrong type, a value too long, an unknown
    field, an unknown type, a bad id, specversion or time."""
    document = draw(event_document())
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        spots = paths(document)
        kind = draw(st.sampled_from(("drop", "retype", "extra", "oversize", "type", "id", "specversion", "time")))
        if kind in ("drop", "retype", "oversize") and spots:
            path = draw(st.sampled_from(spots))
            parent = at_path(document, path[:-1])
            if kind == "drop":
                del parent[path[-1]]
            elif kind == "retype":
                parent[path[-1]] = draw(HOSTILE_VALUES)
            else:
                parent[path[-1]] = CANARY * 4_000
        elif kind == "extra":
            objects = [(), *(path for path in spots if isinstance(at_path(document, path), dict))]
            at_path(document, draw(st.sampled_from(objects)))[draw(HOSTILE_KEYS)] = draw(HOSTILE_VALUES)
        elif kind == "type":
            document["type"] = draw(HOSTILE_TYPES)
        elif kind == "id":
            document["id"] = draw(HOSTILE_IDS)
        elif kind == "specversion":
            document["specversion"] = draw(st.sampled_from(("0.3", "2.0", 1.0, None, "", "1.0\n")))
        else:
            document["time"] = draw(HOSTILE_TIMES)
    return document


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _fits_a_header_key(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _attribute(value: Any) -> bytes:
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else _json_bytes(value)


@st.composite
def hostile_record(draw: st.DrawFn) -> Record:
    """A spoiled event in structured or binary mode, its bytes and headers sometimes spoiled as well."""
    document = draw(spoiled_document())
    binary = draw(st.booleans())
    if binary:
        # Kafka header keys are UTF-8 strings and aiokafka decodes them strictly, so a name UTF-8 cannot carry (a
        # lone surrogate) never reaches a consumer as a header key; as a JSON key in structured mode it still does.
        headers: list[tuple[str, bytes | None]] = [
            (f"ce_{name}", _attribute(value))
            for name, value in document.items()
            if name != "data" and _fits_a_header_key(name)
        ]
        headers.append(("content-type", b"application/json"))
        value: bytes | None = _json_bytes(document["data"]) if "data" in document else None
    else:
        headers = [("content-type", b"application/cloudevents+json")]
        value = _json_bytes(document)
    spoil = draw(st.sampled_from(("none", "none", "value", "header", "content-type", "foreign-header")))
    if spoil == "value" and value is not None:
        how = draw(st.sampled_from(("invalid-utf8", "truncate", "bom", "binary", "empty", "none")))
        at = draw(st.integers(min_value=0, max_value=len(value)))
        value = {
            "invalid-utf8": value[:at] + draw(INVALID_UTF8) + value[at:],
            "truncate": value[:at],
            "bom": b"\xef\xbb\xbf" + value,
            "binary": draw(st.binary(max_size=64)),
            "empty": b"",
            "none": None,
        }[how]
    elif spoil == "header":
        index = draw(st.integers(min_value=0, max_value=len(headers) - 1))
        headers[index] = (headers[index][0], draw(st.one_of(INVALID_UTF8, st.none())))
    elif spoil == "content-type":
        headers = [header for header in headers if header[0] != "content-type"]
        content_type = draw(CONTENT_TYPES)
        if content_type is not None:
            headers.append(("content-type", content_type))
    elif spoil == "foreign-header":
        headers.append(("x-trace", draw(INVALID_UTF8)))
    return Record(value=value, headers=tuple(headers))


# --- properties ------------------------------------------------------------------------------------------------


@settings(HOSTILE, max_examples=300)
@given(hostile_record())
def test_a_hostile_record_in_either_mode_is_decoded_or_dead_lettered_never_anything_else(record: Record) -> None:
    outcome = decode(record)

    if outcome.event is not None:
        # The spoiling happened to leave a valid event (an optional field dropped, an extension added).
        event("still a valid event")
        assert outcome.event.type == TOPIC
        assert not outcome.dead_letters
        return
    letter = assert_publishable_dead_letter(outcome, record)
    event(f"dead-lettered: {letter.data.reason}")


@settings(HOSTILE, max_examples=150)
@given(event_document(), st.booleans())
def test_a_valid_event_with_hostile_text_decodes_to_the_same_event_in_both_modes(
    document: dict[str, Any], binary: bool
) -> None:
    event = INPUT_EVENT_TYPES[document["type"]].model_validate(document)
    value, headers = encode_binary(event) if binary else encode_structured(event)
    topic = document["type"]

    outcome = asyncio.run(_decode_all([Record(value=value, headers=tuple(headers), topic=topic)]))[0]

    assert outcome.event == event
    assert not outcome.dead_letters


@pytest.mark.parametrize("hostile", hostile_records() + non_utf8_header_records(), ids=lambda hostile: hostile.name)
def test_each_kind_of_hostile_record_is_dead_lettered_with_its_reason(hostile: HostileRecord) -> None:
    record = Record(value=hostile.value, headers=hostile.headers)

    letter = assert_publishable_dead_letter(decode(record), record)

    assert letter.data.reason == hostile.reason


def test_a_record_near_the_kafka_limit_is_dead_lettered_cut_to_fit_and_says_so() -> None:
    (near_limit,) = (hostile for hostile in hostile_records() if hostile.name == "near-1-mib")
    assert near_limit.value is not None
    assert len(near_limit.value) > MAX_DEAD_LETTER_BYTES * 3 // 4
    record = Record(value=near_limit.value, headers=(*near_limit.headers, ("x-trace", b"t" * 100_000)))

    letter = assert_publishable_dead_letter(decode(record), record)

    assert letter.data.source_event_id == "e-hostile-901"
    assert letter.data.errors[0].startswith("data.meeting.agenda: String should have at most 20000 characters")
    assert letter.data.errors[-1].startswith("the record was too large to keep whole: the first ")
    assert len(base64.b64decode(letter.data.original_value_base64)) > 500_000


def test_errors_are_bounded_and_never_repeat_what_was_sent() -> None:
    (many,) = (hostile for hostile in hostile_records() if hostile.name == "4000-errors")
    record = Record(value=many.value, headers=many.headers)

    letter = assert_publishable_dead_letter(decode(record), record)

    assert len(letter.data.errors) == MAX_ERRORS + 1
    assert letter.data.errors[-1].startswith("… and ")
    (long_key,) = (hostile for hostile in hostile_records() if hostile.name == "100000-character-key")
    errors = decode(Record(value=long_key.value, headers=long_key.headers)).dead_letters[0].data.errors
    assert errors == (f'data.meeting."{"k" * 64}": Extra inputs are not permitted',)


def test_an_id_that_could_forge_a_log_line_is_neither_accepted_nor_repeated() -> None:
    (crlf,) = (hostile for hostile in hostile_records() if hostile.name == "crlf-in-id")
    record = Record(value=crlf.value, headers=crlf.headers)

    letter = assert_publishable_dead_letter(decode(record), record)

    assert letter.data.source_event_id is None
    assert letter.data.errors == ("id: Value error, must not contain line breaks or other control characters",)


def test_valid_events_around_hostile_records_are_decoded_unaffected() -> None:
    valid = [sample_document(number=number) for number in range(1, 4)]
    hostile = hostile_records()
    records: list[Record] = []
    for index, spoiled in enumerate(hostile):
        records.append(Record(value=spoiled.value, headers=spoiled.headers, offset=index))
        if index % 8 == 0:
            records.append(Record(value=json.dumps(valid[index // 8]).encode(), headers=STRUCTURED, offset=index))

    outcomes = asyncio.run(_decode_all(records))

    events = [outcome.event for outcome in outcomes if outcome.event is not None]
    assert [event.id for event in events] == [document["id"] for document in valid]
    assert [event.model_dump(mode="json", exclude_none=True) for event in events] == [
        INPUT_EVENT_TYPES[TOPIC].model_validate(document).model_dump(mode="json", exclude_none=True)
        for document in valid
    ]
    reasons = [outcome.dead_letters[0].data.reason for outcome in outcomes if outcome.event is None]
    assert reasons == [spoiled.reason for spoiled in hostile]


# --- FastStream's parser ---------------------------------------------------------------------------------------


def _consumer_record(headers: Headers) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=TOPIC,
        partition=0,
        offset=7,
        timestamp=1_795_680_300_000,
        timestamp_type=0,
        key=b"m-hostile",
        value=json.dumps(sample_document()).encode(),
        checksum=None,
        serialized_key_size=9,
        serialized_value_size=10,
        headers=list(headers),
    )


@pytest.mark.parametrize(
    "headers",
    [
        (("content-type", b"\xff\xfe"),),
        (*STRUCTURED, ("x-trace", b"\xff")),
        (("ce_type", None),),
    ],
    ids=["content-type-not-utf8", "foreign-header-not-utf8", "header-without-value"],
)
async def test_the_lenient_parser_hands_records_faststream_cannot_parse_on_to_the_decoder(headers: Headers) -> None:
    parser = AioKafkaParser(msg_class=KafkaMessage, regex=None)
    record = _consumer_record(headers)
    with pytest.raises((UnicodeDecodeError, AttributeError)):
        await parser.parse_message(record)  # FastStream's own parser: the record never reaches the decoder

    message = await parse_record_leniently(record, parser.parse_message)

    assert message.raw_message is record
    assert message.body == record.value


async def test_the_lenient_parser_leaves_ordinary_records_to_faststream() -> None:
    parser = AioKafkaParser(msg_class=KafkaMessage, regex=None)
    record = _consumer_record(STRUCTURED)

    message = await parse_record_leniently(record, parser.parse_message)

    assert message.raw_message is record
    assert message.headers == {"content-type": "application/cloudevents+json"}
