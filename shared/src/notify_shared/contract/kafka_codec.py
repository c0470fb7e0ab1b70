"""Reading and writing CloudEvents on Kafka, in both of the Kafka binding's content modes.

- Structured mode: the record value is the whole event as JSON, content type `application/cloudevents+json`.
- Binary mode: the context attributes travel as `ce_*` headers and the value is the `data` alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from notify_shared.contract.envelope import CLOUDEVENTS_JSON, CloudEvent

Headers = list[tuple[str, bytes]]

_BINARY_PREFIX = "ce_"

# What a rejection carries goes into a log line and a dead-letter event, so it is bounded and printable whatever
# the record held: a record can fail on thousands of fields, name fields with megabyte-long or unprintable keys,
# or carry an id with line breaks or lone surrogates (which cannot even be written as UTF-8).
MAX_ERRORS = 20
MAX_ERROR_LENGTH = 300
MAX_EVENT_ID_LENGTH = 200  # as CloudEvent.id
_MAX_KEY_LENGTH = 64
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]{1,64}")


def _printable(text: str, limit: int) -> str:
    text = _UNPRINTABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _loggable_event_id(event_id: object) -> str | None:
    # An id that could not be a valid CloudEvent id is not repeated at all: cut short it would point elsewhere.
    if isinstance(event_id, str) and 0 < len(event_id) <= MAX_EVENT_ID_LENGTH and not _UNPRINTABLE.search(event_id):
        return event_id
    return None


def _bounded_errors(errors: Iterable[str]) -> tuple[str, ...]:
    every = tuple(errors)
    kept = tuple(_printable(error, MAX_ERROR_LENGTH) for error in every[:MAX_ERRORS])
    if len(every) > MAX_ERRORS:
        kept += (f"… and {len(every) - MAX_ERRORS} more",)
    return kept


class EventRejected(Exception):  # noqa: N818 - it names what happened to the event, like the events themselves
    """The record cannot be used; `reason` is a short code for the dead-letter topic.

    `errors` (at most `MAX_ERRORS`, each cut to `MAX_ERROR_LENGTH` characters) and `event_id` (kept only when it
    could be a CloudEvent id) are safe to log and to serialise, whatever the record held.
    """

    def __init__(self, reason: str, errors: Iterable[str] = (), event_id: str | None = None) -> None:
        self.reason = reason
        self.errors = _bounded_errors(errors)
        self.event_id = _loggable_event_id(event_id)
        super().__init__(f"{reason}: {'; '.join(self.errors)}" if self.errors else reason)


def _location(loc: tuple[int | str, ...]) -> str:
    # A key of an unexpected field is the sender's text: kept when it looks like a field name, else quoted
    # (JSON-escaped, so control characters and surrogates become visible escapes) and cut short.
    parts = [
        str(part) if isinstance(part, int) or _PLAIN_KEY.fullmatch(part) else json.dumps(part[:_MAX_KEY_LENGTH])
        for part in loc
    ]
    return ".".join(parts) or "(event)"


def describe_validation_error(error: ValidationError) -> tuple[str, ...]:
    """Field-by-field messages without the offending input, which may be personal data."""
    return tuple(f"{_location(issue['loc'])}: {issue['msg']}" for issue in error.errors())


def _media_type(content_type: str | None) -> str | None:
    return content_type.split(";", 1)[0].strip().lower() if content_type else None


def _is_json(media_type: str | None) -> bool:
    return media_type is None or media_type == "application/json" or media_type.endswith("+json")


def _parse_json(raw: bytes | None, what: str) -> Any:
    if raw is None:
        raise EventRejected("malformed_json", [f"{what} is empty"])
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise EventRejected("malformed_json", [f"{what} is not valid UTF-8 (byte {error.start})"]) from None
    except json.JSONDecodeError as error:
        raise EventRejected("malformed_json", [f"{what} is not JSON: {error.msg} at line {error.lineno}"]) from None
    except ValueError:
        # Valid JSON that Python will not read: an integer of more than 4300 digits (sys.get_int_max_str_digits).
        raise EventRejected("malformed_json", [f"{what} holds a number too long to read"]) from None
    except RecursionError:
        # Arrays or objects nested about a thousand deep exhaust the parser's stack.
        raise EventRejected("malformed_json", [f"{what} is nested too deeply"]) from None


def _decode_headers(headers: Iterable[tuple[str, bytes | None]]) -> dict[str, str]:
    # Only the headers the CloudEvents binding defines are read (and must be UTF-8); others, such as a binary
    # trace id some producer adds, are not ours to judge and never cost a valid event its notifications.
    decoded: dict[str, str] = {}
    for key, value in headers:
        if not (key.lower() == "content-type" or key.lower().startswith(_BINARY_PREFIX)):
            continue
        try:
            decoded[key.lower()] = (value or b"").decode("utf-8")
        except UnicodeDecodeError:
            raise EventRejected("malformed_header", [f"header {key!r} is not valid UTF-8"]) from None
    return decoded


def read_attributes(value: bytes | None, headers: Iterable[tuple[str, bytes | None]]) -> dict[str, Any]:
    """Turn a Kafka record in either content mode into the structured form: a dict of attributes and `data`."""
    header_map = _decode_headers(headers)
    content_type = _media_type(header_map.get("content-type"))
    if f"{_BINARY_PREFIX}specversion" in header_map:
        attributes: dict[str, Any] = {
            key.removeprefix(_BINARY_PREFIX): text for key, text in header_map.items() if key.startswith(_BINARY_PREFIX)
        }
        if content_type is not None:
            attributes["datacontenttype"] = header_map["content-type"]
        if not _is_json(content_type):
            raise EventRejected("unsupported_content_type", [f"data content type {content_type!r} is not JSON"])
        attributes["data"] = _parse_json(value, "data")
        return attributes
    if content_type not in (None, CLOUDEVENTS_JSON, "application/json"):
        raise EventRejected(
            "unsupported_content_type",
            [f"content type {content_type!r}: send {CLOUDEVENTS_JSON} (structured) or ce_* headers (binary)"],
        )
    document = _parse_json(value, "record value")
    if not isinstance(document, dict) or "specversion" not in document:
        raise EventRejected("not_a_cloudevent", ["the value is not a CloudEvents 1.0 JSON object (no specversion)"])
    return document


def decode_event(
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]],
    accepted: Mapping[str, type[CloudEvent]],
) -> CloudEvent:
    """Decode and validate one record into the model for its `type`; raise `EventRejected` saying why not."""
    attributes = read_attributes(value, headers)
    event_id = attributes.get("id") if isinstance(attributes.get("id"), str) else None
    event_type = attributes.get("type")
    if not isinstance(event_type, str):
        raise EventRejected("not_a_cloudevent", ["type: missing or not a string"], event_id)
    model = accepted.get(event_type)
    if model is None:
        raise EventRejected(
            "unknown_event_type", [f"type {event_type[:100]!r} is not one of {sorted(accepted)}"], event_id
        )
    try:
        return model.model_validate(attributes)
    except ValidationError as error:
        raise EventRejected("schema_violation", describe_validation_error(error), event_id) from None


def encode_structured(event: BaseModel) -> tuple[bytes, Headers]:
    """The event as one JSON document (structured content mode)."""
    return event.model_dump_json(exclude_none=True).encode(), [("content-type", CLOUDEVENTS_JSON.encode())]


def encode_binary(event: CloudEvent) -> tuple[bytes, Headers]:
    """The event's `data` as the value and its attributes as `ce_*` headers (binary content mode)."""
    document = json.loads(event.model_dump_json(exclude_none=True))
    data = document.pop("data")
    content_type = document.pop("datacontenttype", "application/json")
    headers: Headers = [(f"{_BINARY_PREFIX}{name}", str(text).encode()) for name, text in document.items()]
    headers.append(("content-type", content_type.encode()))
    return json.dumps(data, ensure_ascii=False).encode(), headers
