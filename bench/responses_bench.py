"""Parents answering their invitation: a school of N guardians gets it, and the parents open their link and answer.

Two load models (docs/benchmarks.md has the figures, the commands, and why):

- `arrivals` (the target): the parents arrive over the first minutes (`--arrival-seconds`, at random, the same
  for every run), each opens the page, reads it for a few seconds (`--think-min`..`--think-max`) and answers.
  With 1,000 parents arriving over 100 s and reading 10-30 s, about 200 are on the page at the peak: what "a
  school of 1,000 guardians answers within a few minutes, 200 concurrent parents" means. Open loop: a slow
  server does not slow the arrivals down, as real parents would not wait for each other.
- `saturation` (a ceiling): C parents at a time, each answering the moment its page arrives and the next one
  starting at once. No parent behaves so; it says how many answers a second the service can take at most.

Figures: page latency p50/p99 for GET and POST, the most parents on the page at once, failed requests,
answers lost or doubled, and every answer's event on the topic. The service runs as deployed (`notify-responses`,
uvicorn, in its own process) against the real broker; this process is the load generator (httpx, one client per
parent, like one phone each). With `--databases sqlite,postgresql` the same load runs against each in turn, in
one invocation, with the machine's load average (`uptime`) and its listen-queue overflows (`nstat`) before and
after each.

    uv run python bench/responses_bench.py                                  # arrivals, SQLite and PostgreSQL
    uv run python bench/responses_bench.py --mode saturation --concurrency 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import ssl
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

from notify_shared import samples
from notify_shared.answer_links import AnswerLinkKeys, answer_url
from notify_shared.testing.databases import fresh_postgres_database
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


@dataclass
class Load:
    """What the parents do: the model, and its numbers."""

    mode: str
    guardians: int
    concurrency: int
    arrival_seconds: float
    think_min: float
    think_max: float
    seed: int = 14


@dataclass
class Tally:
    """What the load generator saw."""

    get: list[float] = field(default_factory=list)
    post: list[float] = field(default_factory=list)
    failed: dict[str, int] = field(default_factory=dict)
    answered: int = 0
    on_page: int = 0
    most_on_page: int = 0

    def fail(self, what: str) -> None:
        self.failed[what] = self.failed.get(what, 0) + 1


_TLS = ssl.create_default_context()
"""Shared by the phones: building one per client costs the load generator milliseconds of CPU each, which would
show up as the service's latency (the pages are plain HTTP here anyway)."""


async def _parent(url: str, number: int, think: float, tally: Tally) -> None:
    # One phone: its own client and connection. A connection the server closed while the parent was reading
    # is opened again for the answer, as a browser does.
    async with httpx.AsyncClient(timeout=60, verify=_TLS) as phone:
        tally.on_page += 1
        tally.most_on_page = max(tally.most_on_page, tally.on_page)
        try:
            started = time.perf_counter()
            page = await phone.get(url)
            tally.get.append(time.perf_counter() - started)
            match = _PROOF.search(page.text)
            if page.status_code != 200 or match is None:
                tally.fail(f"GET {page.status_code}")
                return
            await asyncio.sleep(think)
            form = {"proof": match.group(1), "answer": ANSWERS[number % 3], "comment": f"Svar nummer {number}"}
            started = time.perf_counter()
            answered = await phone.post(url, data=form)
            tally.post.append(time.perf_counter() - started)
            if answered.status_code == 200:
                tally.answered += 1
            else:
                tally.fail(f"POST {answered.status_code}")
        except httpx.TransportError as error:
            tally.fail(type(error).__name__)
        finally:
            tally.on_page -= 1


async def _drive(load: Load, urls: list[str], tally: Tally) -> None:
    if load.mode == "saturation":
        slots = asyncio.Semaphore(load.concurrency)

        async def closed_loop(number: int, url: str) -> None:
            async with slots:
                await _parent(url, number, 0.0, tally)

        await asyncio.gather(*(closed_loop(number, url) for number, url in enumerate(urls)))
        return
    # Open loop: each parent arrives at their own time, whatever the server is doing.
    chance = random.Random(load.seed)  # noqa: S311 - a load model, not cryptography
    arrivals = sorted(chance.uniform(0, load.arrival_seconds) for _ in urls)
    thinks = [chance.uniform(load.think_min, load.think_max) for _ in urls]
    origin = time.perf_counter()

    async def arriving(number: int, url: str) -> None:
        await asyncio.sleep(max(0.0, origin + arrivals[number] - time.perf_counter()))
        await _parent(url, number, thinks[number], tally)

    await asyncio.gather(*(arriving(number, url) for number, url in enumerate(urls)))


def _machine() -> dict[str, object]:
    # The kernel's count of connections dropped because a listen queue was full (machine-wide, as `nstat` shows
    # it as TcpExtListenOverflows): it grows when a server does not accept connections fast enough.
    names, values = [
        line.split() for line in Path("/proc/net/netstat").read_text().splitlines() if line.startswith("TcpExt:")
    ]
    return {
        "load_average": [round(value, 1) for value in os.getloadavg()],
        "listen_overflows": int(dict(zip(names, values, strict=True))["ListenOverflows"]),
    }


_BUCKET = re.compile(r"^notify_responses_page_seconds_bucket\{(?P<labels>[^}]*)\} (?P<count>\S+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def _server_side(metrics: str) -> dict[str, object]:
    """From the service's own histogram (time inside the app, without the load generator's or the network's):
    the share of GETs within 100 ms and POSTs within 250 ms, and the bucket each method's p99 falls in."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    for match in _BUCKET.finditer(metrics):
        labels = dict(_LABEL.findall(match["labels"]))
        if labels.get("status") == "200":
            buckets.setdefault(labels["method"], []).append((float(labels["le"]), float(match["count"])))
    figures: dict[str, object] = {}
    for method, target in (("GET", 0.1), ("POST", 0.25)):
        rows = sorted(buckets.get(method, []))
        total = rows[-1][1] if rows else 0.0
        if not total:
            continue
        within = next(count for bound, count in rows if bound >= target)
        p99 = next(bound for bound, count in rows if count >= 0.99 * total)
        figures[f"{method.lower()}_within_{int(target * 1000)}ms"] = round(within / total, 3)
        figures[f"{method.lower()}_p99_at_most_ms"] = p99 * 1000 if p99 != float("inf") else "over 5000"
    return figures


@asynccontextmanager
async def _service(database_url: str, bootstrap: str, topics: Topics, port: int, admin_port: int) -> AsyncIterator[str]:
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
        "ADMIN_PORT": str(admin_port),
        # The load generator is one address: the per-client limit would stop it, which is not what is measured.
        "RESPONSES_REQUESTS_PER_CLIENT_PER_MINUTE": "100000",
        "LOG_LEVEL": "WARNING",
    }
    # The service's log goes to stderr, so that stdout holds the figures only.
    server = await asyncio.create_subprocess_exec("notify-responses", env=environment, stdout=sys.stderr)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            for _ in range(300):
                try:
                    if (await client.get(f"{base_url}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        yield base_url
    finally:
        server.terminate()
        await server.wait()


async def run(load: Load, database_url: str, bootstrap: str) -> dict[str, object]:
    topics = Topics(f"bench{uuid.uuid4().hex[:6]}.")
    await create_all_topics(bootstrap, topics)
    port, admin_port = _free_port(), _free_port()
    async with _service(database_url, bootstrap, topics, port, admin_port) as base_url:
        # The meeting starts a week from now, so every link is open.
        meeting = samples.upcoming_meeting("m-bench", datetime.now(samples.OSLO))
        recipients = [samples.sample_guardian(number) for number in range(1, load.guardians + 1)]
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
        async with httpx.AsyncClient(timeout=30) as client:
            for _ in range(600):  # until the service has read the meeting
                if (await client.get(urls[-1])).status_code == 200:
                    break
                await asyncio.sleep(0.2)
        before = _machine()
        tally = Tally()
        started = time.perf_counter()
        await _drive(load, urls, tally)
        elapsed = time.perf_counter() - started
        after = _machine()
        # Until every recorded answer's event is on the topic (or two minutes have passed).
        async with TopicReader(bootstrap, topics.meeting_rsvp) as reader:
            deadline = time.perf_counter() + 120
            records: list[dict[str, object]] = []
            while time.perf_counter() < deadline:
                records = await reader.read_to_end()
                if len(records) >= tally.answered:
                    break
                await asyncio.sleep(0.5)
        drained = time.perf_counter() - started
        async with httpx.AsyncClient(timeout=30) as client:
            server_side = _server_side((await client.get(f"http://127.0.0.1:{admin_port}/metrics")).text)
    answered = {str(record["data"]["guardian_id"]) for record in records}  # type: ignore[index]
    return {
        "database": database_url.split(":", 1)[0].split("+", 1)[0],
        "mode": load.mode,
        "guardians": load.guardians,
        "most_on_the_page": tally.most_on_page,
        "seconds_all_answered": round(elapsed, 1),
        "seconds_all_published": round(drained, 1),
        "get_ms_p50": round(1000 * statistics.median(tally.get), 1) if tally.get else None,
        "get_ms_p99": round(1000 * _percentile(tally.get, 0.99), 1) if tally.get else None,
        "post_ms_p50": round(1000 * statistics.median(tally.post), 1) if tally.post else None,
        "post_ms_p99": round(1000 * _percentile(tally.post, 0.99), 1) if tally.post else None,
        "server_side": server_side,
        "answers_recorded": tally.answered,
        "answers_per_second": round(tally.answered / elapsed, 1),
        "failed_requests": tally.failed,
        "events_on_topic": len(records),
        "answers_lost": tally.answered - len(answered),
        "answers_doubled": len(records) - len(answered),
        "machine_before": before,
        "machine_after": after,
    }


async def run_all(
    load: Load, databases: list[str], postgres_url: str | None, bootstrap: str
) -> list[dict[str, object]]:
    results = []
    for database in databases:
        if database == "sqlite":
            url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'responses.db'}"
            results.append(await run(load, url, bootstrap))
        else:
            if postgres_url is None:
                raise SystemExit("postgresql needs --postgres-url or NOTIFY_TEST_DATABASE_URL")
            async with fresh_postgres_database(postgres_url, prefix="responses_bench") as url:
                results.append(await run(load, url, bootstrap))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("arrivals", "saturation"), default="arrivals")
    parser.add_argument("--guardians", type=int, default=1000)
    parser.add_argument("--arrival-seconds", type=float, default=100.0, help="arrivals: parents arrive over this")
    parser.add_argument("--think-min", type=float, default=10.0, help="arrivals: shortest reading time, seconds")
    parser.add_argument("--think-max", type=float, default=30.0, help="arrivals: longest reading time, seconds")
    parser.add_argument("--concurrency", type=int, default=200, help="saturation: parents at a time")
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--postgres-url", default=os.environ.get("NOTIFY_TEST_DATABASE_URL"))
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    arguments = parser.parse_args()
    load = Load(
        mode=arguments.mode,
        guardians=arguments.guardians,
        concurrency=arguments.concurrency,
        arrival_seconds=arguments.arrival_seconds,
        think_min=arguments.think_min,
        think_max=arguments.think_max,
    )
    databases = [name.strip() for name in arguments.databases.split(",") if name.strip()]
    started = datetime.now().astimezone().isoformat(timespec="seconds")
    results = asyncio.run(run_all(load, databases, arguments.postgres_url, arguments.bootstrap))
    json.dump({"started": started, "results": results}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
