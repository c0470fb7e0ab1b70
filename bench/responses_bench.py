"""Parents answering at once: one school of N guardians gets its invitation, C parents at a time open their link
and answer. Figures: page latency p50/p99 for GET and POST, answers lost or doubled, and every answer's event on
the topic. docs/benchmarks.md has the figures and the commands.

The service runs as deployed (`notify-responses`, uvicorn, in its own process) against the real broker and the
database given; this process is the load generator (httpx, one connection per parent at a time).

    uv run python bench/responses_bench.py                       # SQLite, 1,000 guardians, 200 at once
    uv run python bench/responses_bench.py --database-url postgresql+asyncpg://postgres@127.0.0.1:55491/notify
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx

from notify_shared import samples
from notify_shared.answer_links import AnswerLinkKeys, answer_url
from notify_shared.testing.kafka import EventPublisher, TopicReader, create_all_topics
from notify_shared.topics import Topics

KEY = "bench-answer-link-key-0123456789abcdef"
ANSWERS = ("accepted", "declined", "tentative")
_PROOF = re.compile(r'name="proof" value="([^"]*)"')


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _parent(client: httpx.AsyncClient, url: str, number: int, timings: dict[str, list[float]]) -> None:
    started = time.perf_counter()
    page = await client.get(url)
    timings["get"].append(time.perf_counter() - started)
    assert page.status_code == 200, page.status_code
    match = _PROOF.search(page.text)
    assert match is not None
    form = {"proof": match.group(1), "answer": ANSWERS[number % 3], "comment": f"Svar nummer {number}"}
    started = time.perf_counter()
    answered = await client.post(url, data=form)
    timings["post"].append(time.perf_counter() - started)
    assert answered.status_code == 200, answered.status_code


async def run(guardians: int, concurrency: int, database_url: str, bootstrap: str) -> dict[str, object]:
    topics = Topics(f"bench{uuid.uuid4().hex[:6]}.")
    await create_all_topics(bootstrap, topics)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    environment = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TOPIC_PREFIX": topics.prefix,
        "RESPONSES_CONSUMER_GROUP": f"responses-{topics.prefix}",
        "RESPONSES_DATABASE_URL": database_url,
        "ANSWER_LINK_KEYS": json.dumps({"a": KEY}),
        "ANSWER_LINK_SIGNING_KEY_ID": "a",
        "PUBLIC_BASE_URL": base_url,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        # The load generator is one address: the per-client limit would stop it, which is not what is measured.
        "RESPONSES_REQUESTS_PER_CLIENT_PER_MINUTE": "100000",
        "LOG_LEVEL": "WARNING",
    }
    server = await asyncio.create_subprocess_exec("notify-responses", env=environment)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            for _ in range(300):
                try:
                    if (await client.get(f"{base_url}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
            # The meeting starts a week from now, so every link is open.
            meeting = samples.upcoming_meeting("m-bench", datetime.now(samples.OSLO))
            recipients = [samples.sample_guardian(number) for number in range(1, guardians + 1)]
            event = samples.meeting_created(meeting=meeting, recipients=recipients)
            async with EventPublisher(bootstrap, topics) as publisher:
                await publisher.publish(event)
            keys = AnswerLinkKeys({"a": KEY.encode()}, signing_key_id="a")
            urls = [
                answer_url(
                    base_url,
                    keys.sign(
                        school_id=event.data.school.id,
                        meeting_id=meeting.meeting_id,
                        guardian_id=guardian.guardian_id,
                        expires_at=meeting.starts_at,
                    ),
                )
                for guardian in recipients
            ]
            for _ in range(600):  # until the service has read the meeting
                if (await client.get(urls[-1])).status_code == 200:
                    break
                await asyncio.sleep(0.2)

        timings: dict[str, list[float]] = {"get": [], "post": []}
        slots = asyncio.Semaphore(concurrency)

        async def one(number: int, url: str) -> None:
            # Each parent is a phone of its own: a connection for their page and answer, not one shared pool.
            async with slots, httpx.AsyncClient(timeout=60) as phone:
                await _parent(phone, url, number, timings)

        async with httpx.AsyncClient(timeout=60) as client:
            started = time.perf_counter()
            await asyncio.gather(*(one(number, url) for number, url in enumerate(urls)))
            elapsed = time.perf_counter() - started

            published_by = time.perf_counter() + 120
            while time.perf_counter() < published_by:
                metrics = (await client.get(f"{base_url}/metrics")).text
                waiting = re.search(r"^notify_responses_outbox_waiting\{[^}]*\} (\S+)$", metrics, re.MULTILINE)
                if waiting is not None and float(waiting.group(1)) == 0:
                    break
                await asyncio.sleep(0.2)
            drained = time.perf_counter() - started

        async with TopicReader(bootstrap, topics.meeting_rsvp) as reader:
            records = await reader.read_to_end()
        answered = {record["data"]["guardian_id"] for record in records}
        return {
            "guardians": guardians,
            "concurrency": concurrency,
            "database": database_url.split(":", 1)[0],
            "seconds_all_answered": round(elapsed, 2),
            "seconds_all_published": round(drained, 2),
            "get_ms_p50": round(1000 * statistics.median(timings["get"]), 1),
            "get_ms_p99": round(1000 * _percentile(timings["get"], 0.99), 1),
            "post_ms_p50": round(1000 * statistics.median(timings["post"]), 1),
            "post_ms_p99": round(1000 * _percentile(timings["post"], 0.99), 1),
            "events_on_topic": len(records),
            "answers_lost": guardians - len(answered),
            "answers_doubled": len(records) - len(answered),
        }
    finally:
        server.terminate()
        await server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guardians", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file in /tmp")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    arguments = parser.parse_args()
    database_url = arguments.database_url or f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'responses.db'}"
    result = asyncio.run(run(arguments.guardians, arguments.concurrency, database_url, arguments.bootstrap))
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
