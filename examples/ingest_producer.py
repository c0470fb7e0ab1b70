"""Post one event to the notify HTTP ingest, the way a school admin system would (docs/ingest.md).

    uv run python examples/ingest_producer.py --url http://127.0.0.1:8000 --api-key "$KEY"
    uv run python examples/ingest_producer.py --url … --api-key … --type absence.noted
    uv run python examples/ingest_producer.py --url … --api-key … --file my-event.json

Without `--file` it posts a realistic sample event (`notify_shared.samples`) with a fresh id. Run it twice with
the same `--event-id` to see idempotency: the second answer says `"duplicate": true`.

What a production client should copy: one id per event, kept with the event (store it before the first try);
retry with the same body on 503, 429 (after its Retry-After), timeouts and broken connections (a repeat can
never publish twice); never retry 400, 401, 403, 409 or 413 unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from notify_shared import samples
from notify_shared.contract import CloudEvent

SAMPLES: dict[str, Callable[..., CloudEvent]] = {
    "meeting.created": samples.meeting_created,
    "meeting.updated": samples.meeting_updated,
    "meeting.cancelled": samples.meeting_cancelled,
    "message.posted": samples.message_posted,
    "absence.noted": samples.absence_noted,
}
RETRYABLE_STATUS = {429: "too many requests", 503: "unavailable"}
CLOUDEVENTS_JSON = "application/cloudevents+json"


def sample_event(event_type: str, *, event_id: str, school_id: str | None) -> dict[str, Any]:
    """A sample event as the JSON document an admin system sends."""
    document: dict[str, Any] = json.loads(SAMPLES[event_type](event_id=event_id).model_dump_json(exclude_none=True))
    if school_id is not None:
        document["data"]["school"]["id"] = school_id
    return document


def post_event(
    client: httpx.Client, url: str, api_key: str, event: dict[str, Any], *, attempts: int = 5
) -> httpx.Response:
    """POST the event; on 503, 429 or a network error, wait and send the very same body again."""
    body = json.dumps(event, ensure_ascii=False).encode()
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": CLOUDEVENTS_JSON}
    for attempt in range(1, attempts + 1):
        last_try = attempt == attempts
        try:
            response = client.post(f"{url.rstrip('/')}/v1/events", content=body, headers=headers)
        except httpx.TransportError as error:
            if last_try:
                raise
            print(f"try {attempt}: {type(error).__name__}; trying again", file=sys.stderr)
            time.sleep(2**attempt)
            continue
        if response.status_code not in RETRYABLE_STATUS or last_try:
            return response
        wait = int(response.headers.get("Retry-After", "1"))
        print(
            f"try {attempt}: {response.status_code} {RETRYABLE_STATUS[response.status_code]}, trying again in {wait} s",
            file=sys.stderr,
        )
        time.sleep(wait)
    raise AssertionError("unreachable: the last try returns or raises")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Post one CloudEvent to the notify HTTP ingest.")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Base URL of the ingest.")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("INGEST_API_KEY"),
        help="Your school's API key (default: $INGEST_API_KEY).",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--type", choices=sorted(SAMPLES), default="meeting.created", help="Which sample to post.")
    source.add_argument("--file", type=Path, help="Post this CloudEvent (JSON) instead of a sample.")
    parser.add_argument("--event-id", help="The sample's CloudEvents id (default: a new UUID).")
    parser.add_argument(
        "--school-id",
        help="Put this school id in the sample (it must be your key's school, and the ingest's INGEST_SCHOOLS must "
        "allow the sample's school name and SMS sender id for it).",
    )
    parser.add_argument("--timeout", type=float, default=15.0, help="Seconds per request.")
    arguments = parser.parse_args(argv)
    if not arguments.api_key:
        parser.error("give --api-key or set INGEST_API_KEY")

    if arguments.file is not None:
        event = json.loads(arguments.file.read_text(encoding="utf-8"))
    else:
        event_id = arguments.event_id or str(uuid.uuid4())
        event = sample_event(arguments.type, event_id=event_id, school_id=arguments.school_id)

    with httpx.Client(timeout=arguments.timeout) as client:
        response = post_event(client, arguments.url, arguments.api_key, event)
    print(f"{response.status_code} {response.reason_phrase}")
    try:
        print(json.dumps(response.json(), indent=2, ensure_ascii=False))
    except ValueError:  # not JSON: something other than the ingest answered (a proxy, a wrong URL)
        print(response.text)
    return 0 if response.status_code == 202 else 1


if __name__ == "__main__":
    sys.exit(main())
