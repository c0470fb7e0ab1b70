"""The opening minute of development-talk booking: one school's guardians open their booking links at once and
each books a free slot, retrying on "just taken" with the slots the page still shows. Figures: bookings/s, GET and
POST latency p50/p99, how conflicts were answered, and double bookings (must be 0). docs/benchmarks.md has the
figures and the commands.

The school has R rounds (classes) of P pupils with two guardians each and S slots per round (the defaults: 5 x 100
pupils, 1,000 guardians, 5 x 80 = 400 slots, so 100 pupils find nothing left). The service runs as deployed
(`notify-responses`, uvicorn, its own process, `/metrics` on its admin port) against the real broker and the
database given; this process is the load generator, one connection per guardian.

    uv run python bench/talks_bench.py                        # SQLite
    uv run python bench/talks_bench.py --database-url postgresql+asyncpg://postgres@127.0.0.1:55491/notify
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from notify_responses.talks_store import bookings
from notify_shared import samples
from notify_shared.answer_links import AnswerLinkKeys, booking_url
from notify_shared.contract import TalkPupil, TalkSlot, TalksOffered
from notify_shared.ledger.database import create_engine
from notify_shared.testing.kafka import EventPublisher, TopicReader, create_all_topics
from notify_shared.topics import Topics

KEY = "bench-answer-link-key-0123456789abcdef"
_PROOF = re.compile(r'name="proof" value="([^"]*)"')
_SLOT = re.compile(r'name="slot" type="radio" value="([^"]*)"')
MAX_TRIES = 10


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def _rounds(count: int, pupils: int, slots: int, now: datetime) -> list[TalksOffered]:
    offers = []
    first_day = (now + timedelta(days=10)).astimezone(samples.OSLO).date()
    guardian_number = 0
    for round_number in range(count):
        round_pupils = []
        for pupil in range(pupils):
            guardian_number += 2
            round_pupils.append(
                TalkPupil(
                    pupil_id=f"p-{round_number}-{pupil}",
                    first_name="Emma",
                    guardians=(
                        samples.sample_guardian(guardian_number - 1),
                        samples.sample_guardian(guardian_number),
                    ),
                )
            )
        round_slots = []
        for slot in range(slots):
            day = datetime.combine(first_day + timedelta(days=slot // 20), datetime.min.time(), tzinfo=samples.OSLO)
            starts = day + timedelta(hours=12, minutes=15 * (slot % 20))
            round_slots.append(
                TalkSlot(
                    slot_id=f"s-{slot}",
                    starts_at=starts,
                    ends_at=starts + timedelta(minutes=15),
                    teacher_id="t-311",
                    place="Rom 204",
                )
            )
        offers.append(
            samples.talks_offered(
                round_id=f"r-bench-{round_number}",
                opens_at=now - timedelta(minutes=1),
                slots=round_slots,
                pupils=round_pupils,
                time=now - timedelta(minutes=2),
            )
        )
    return offers


def _links(base_url: str, keys: AnswerLinkKeys, offer: TalksOffered) -> list[str]:
    """Every guardian's booking link of one round."""
    data = offer.data
    return [
        booking_url(
            base_url,
            keys.sign_booking(
                school_id=data.school.id,
                round_id=data.round_id,
                pupil_id=pupil.pupil_id,
                guardian_id=guardian.guardian_id,
                expires_at=data.booking_closes_at,
            ),
        )
        for pupil in data.pupils
        for guardian in pupil.guardians
    ]


async def _held_slots(database_url: str) -> list[tuple[str, str]]:
    """(round, slot) of every booking in the database: a slot held twice would be a double booking."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(sa.select(bookings.c.round_id, bookings.c.slot_id))
            return [(row.round_id, row.slot_id) for row in rows]
    finally:
        await engine.dispose()


async def _guardian(
    client: httpx.AsyncClient, url: str, timings: dict[str, list[float]], outcomes: Counter[str]
) -> None:
    started = time.perf_counter()
    page = await client.get(url)
    timings["get"].append(time.perf_counter() - started)
    for _ in range(MAX_TRIES):
        if "Samtalen din:" in page.text:
            outcomes["already_booked_by_the_other_guardian"] += 1
            return
        free = _SLOT.findall(page.text)
        if not free:
            outcomes["none_left"] += 1
            return
        proof = _PROOF.search(page.text)
        assert proof is not None
        form = {"proof": proof.group(1), "action": "book", "slot": random.choice(free)}  # noqa: S311 - load only
        started = time.perf_counter()
        page = await client.post(url, data=form)
        timings["post"].append(time.perf_counter() - started)
        if page.status_code == 200:
            outcomes["booked_or_moved"] += 1
            return
        assert page.status_code == 409, page.status_code
        outcomes["just_taken_then_retried"] += 1
    outcomes["gave_up"] += 1


async def run(
    *, rounds: int, pupils: int, slots: int, concurrency: int, database_url: str, bootstrap: str
) -> dict[str, object]:
    topics = Topics(f"bench{uuid.uuid4().hex[:6]}.")
    await create_all_topics(bootstrap, topics)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    admin_port = _free_port()
    admin_url = f"http://127.0.0.1:{admin_port}"
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
        # One load generator is one address, and a guardian who retries posts several times: not what is measured.
        "RESPONSES_REQUESTS_PER_CLIENT_PER_MINUTE": "100000",
        "RESPONSES_ANSWERS_PER_LINK_PER_HOUR": "1000",
        "LOG_LEVEL": "WARNING",
    }
    offers = _rounds(rounds, pupils, slots, datetime.now(UTC))
    keys = AnswerLinkKeys({"a": KEY.encode()}, signing_key_id="a")
    urls = [url for offer in offers for url in _links(base_url, keys, offer)]
    random.shuffle(urls)
    server = await asyncio.create_subprocess_exec("notify-responses", env=environment)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            for _ in range(300):
                try:
                    if (await client.get(f"{admin_url}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
            async with EventPublisher(bootstrap, topics) as publisher:
                for offer in offers:
                    await publisher.publish(offer)
            # Until the service has read every round: the first guardian's link of each opens.
            for offer in offers:
                url = _links(base_url, keys, offer)[0]
                for _ in range(600):
                    if (await client.get(url)).status_code == 200:
                        break
                    await asyncio.sleep(0.2)

        timings: dict[str, list[float]] = {"get": [], "post": []}
        outcomes: Counter[str] = Counter()
        gate = asyncio.Semaphore(concurrency)

        async def one(url: str) -> None:
            async with gate, httpx.AsyncClient(timeout=60) as phone:
                await _guardian(phone, url, timings, outcomes)

        started = time.perf_counter()
        await asyncio.gather(*(one(url) for url in urls))
        elapsed = time.perf_counter() - started

        async with httpx.AsyncClient(timeout=30) as client:
            for _ in range(600):
                metrics = (await client.get(f"{admin_url}/metrics")).text
                waiting = re.search(r"^notify_responses_outbox_waiting\{[^}]*\} (\S+)$", metrics, re.MULTILINE)
                if waiting is not None and float(waiting.group(1)) == 0:
                    break
                await asyncio.sleep(0.2)
        held = await _held_slots(database_url)
        async with TopicReader(bootstrap, topics.talk_booked) as reader:
            booked_events = await reader.read_to_end()
        return {
            "guardians": len(urls),
            "pupils": rounds * pupils,
            "slots": rounds * slots,
            "concurrency": concurrency,
            "database": database_url.split(":", 1)[0],
            "seconds_all_done": round(elapsed, 2),
            "bookings": len(held),
            "bookings_per_second": round(len(held) / elapsed, 1),
            "double_bookings": len(held) - len(set(held)),
            "talk_booked_event_ids": len({record["id"] for record in booked_events}),
            "get_ms_p50": round(1000 * statistics.median(timings["get"]), 1),
            "get_ms_p99": round(1000 * _percentile(timings["get"], 0.99), 1),
            "post_ms_p50": round(1000 * statistics.median(timings["post"]), 1),
            "post_ms_p99": round(1000 * _percentile(timings["post"], 0.99), 1),
            "outcomes": dict(outcomes),
        }
    finally:
        server.terminate()
        await server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pupils", type=int, default=100, help="per round, two guardians each (at most 200)")
    parser.add_argument("--slots", type=int, default=80, help="per round")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file in /tmp")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    arguments = parser.parse_args()
    database_url = arguments.database_url or f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'responses.db'}"
    result = asyncio.run(
        run(
            rounds=arguments.rounds,
            pupils=arguments.pupils,
            slots=arguments.slots,
            concurrency=arguments.concurrency,
            database_url=database_url,
            bootstrap=arguments.bootstrap,
        )
    )
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
