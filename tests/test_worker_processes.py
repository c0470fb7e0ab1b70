"""One command, several worker processes (`WORKERS`): the invitations service as an operator runs it.

`WORKERS=2 faststream run notify_invitations.app:create_app --factory` against the real broker and PostgreSQL:
the two workers share the topic's partitions as two members of one consumer group, every event is handled once,
`ADMIN_PORT` answers for both (`/metrics` with each worker's series), and one SIGTERM stops both gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from notify_ingest.auth import api_key_digest
from notify_ingest.testing import SCHOOL, SCHOOL_KEY, records_on
from notify_shared import samples
from notify_shared.contract import Channel, MeetingCreated
from notify_shared.testing.databases import fresh_postgres_database
from notify_shared.testing.faults import ServiceProcess, free_port
from notify_shared.testing.kafka import EventPublisher, TopicReader, create_all_topics, create_topics
from notify_shared.testing.waiting import wait_until
from notify_shared.topics import MEETING_CREATED, Topics

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

PARTITIONS = 4
EVENTS = 12
GUARDIANS_PER_EVENT = 2


@pytest.fixture
async def postgres_database(postgres_url: str) -> AsyncIterator[str]:
    async with fresh_postgres_database(postgres_url) as url:
        yield url


def _samples(exposition: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    ]


async def _metrics(service: ServiceProcess) -> str:
    async with httpx.AsyncClient(timeout=10.0) as client:
        response = await client.get(f"http://127.0.0.1:{service.admin_port}/metrics")
    response.raise_for_status()
    return response.text


async def _partitions_by_worker(service: ServiceProcess, topic: str) -> dict[str, set[str]]:
    """The partitions of `topic` each worker holds, as its consumer-lag series on `/metrics` show them."""
    held: dict[str, set[str]] = {}
    for labels, _ in _samples(await _metrics(service), "notify_consumer_lag"):
        if labels["topic"] == topic:
            held.setdefault(labels["worker"], set()).add(labels["partition"])
    return held


def _meeting_created(index: int, now: datetime) -> MeetingCreated:
    # Fixed ids, so the meetings' partitions are the same on every run.
    guardians = [
        samples.sample_guardian(
            index * GUARDIANS_PER_EVENT + number + 1,
            guardian_id=f"g-workers-{index}-{number}",
            channels=[Channel.EMAIL],
        )
        for number in range(GUARDIANS_PER_EVENT)
    ]
    meeting = samples.upcoming_meeting(f"m-workers-{index}", now)
    return samples.meeting_created(event_id=str(uuid.uuid4()), meeting=meeting, recipients=guardians, time=now)


def _spawn(command: str, environment: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / command)], env=environment, stdout=log, stderr=subprocess.STDOUT
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


async def _invitations_with_two_workers(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> tuple[ServiceProcess, Topics]:
    """The invitations service started as an operator would with WORKERS=2, on topics of its own."""
    topics = Topics(f"workers{uuid.uuid4().hex[:8]}.")
    await create_all_topics(kafka_bootstrap, topics, PARTITIONS)
    await create_topics(kafka_bootstrap, [topics.event_handled, topics.notification_status, topics.dead_letter])
    service = ServiceProcess(
        "notify_invitations.app:create_app",
        {
            "WORKERS": "2",
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "TOPIC_PREFIX": topics.prefix,
            "INVITATIONS_CONSUMER_GROUP": f"invitations-{uuid.uuid4().hex[:8]}",
            "DATABASE_URL": database_url,
            "OUTBOX_DIR": str(tmp_path / "outbox"),
            "SMS_PROVIDER": "outbox",
            "LOG_LEVEL": "INFO",
        },
        tmp_path / "service.log",
    )
    service.start()
    return service, topics


def _worker_pids(service: ServiceProcess) -> list[int]:
    return [int(pid) for pid in re.findall(r"worker \d started \(pid (\d+)\)", service.log_text())]


async def test_two_workers_share_the_partitions_handle_each_event_once_and_stop_together_on_sigterm(
    kafka_bootstrap: str, postgres_database: str, tmp_path: Path
) -> None:
    service, topics = await _invitations_with_two_workers(kafka_bootstrap, postgres_database, tmp_path)
    outbox = tmp_path / "outbox"
    meeting_created = topics.for_event_type(MEETING_CREATED)
    try:
        await wait_until(lambda: asyncio.to_thread(service.ready), within=90, interval=0.5, what="both workers ready")

        async def both_hold_partitions() -> bool:
            held = await _partitions_by_worker(service, meeting_created)
            return sorted(held) == ["0", "1"] and all(held.values())

        await wait_until(
            both_hold_partitions, within=90, interval=0.5, what="each worker holding partitions of meeting.created"
        )
        held = await _partitions_by_worker(service, meeting_created)
        assert held["0"].isdisjoint(held["1"]), "a partition is held by both workers"
        assert held["0"] | held["1"] == {str(partition) for partition in range(PARTITIONS)}

        now = datetime.now(UTC)
        events = [_meeting_created(index, now) for index in range(EVENTS)]
        async with EventPublisher(kafka_bootstrap, topics) as publisher:
            placed = [await publisher.publish(event) for event in events]
        assert {record.partition for record in placed} == set(range(PARTITIONS)), "the events span every partition"

        async with TopicReader(kafka_bootstrap, topics.event_handled) as handled:

            async def all_handled() -> bool:
                records = await handled.poll()
                return {record["data"]["source_event_id"] for record in records} >= {event.id for event in events}

            await wait_until(all_handled, within=90, interval=0.2, what="every meeting.created handled")
            await asyncio.sleep(1)  # a second report of one event, if any, would come in now
            reports = Counter(record["data"]["source_event_id"] for record in await handled.poll())
        assert {event.id: reports[event.id] for event in events} == {event.id: 1 for event in events}

        expected = EVENTS * GUARDIANS_PER_EVENT
        assert len(list((outbox / "email").glob("*.eml"))) == expected, "one email per guardian, none twice"

        exposition = await _metrics(service)
        sent_by_worker: Counter[str] = Counter()
        for labels, value in _samples(exposition, "notify_notifications_total"):
            if labels["status"] == "sent":
                sent_by_worker[labels["worker"]] += int(value)
        assert sum(sent_by_worker.values()) == expected
        busy = sorted(worker for worker, sent in sent_by_worker.items() if sent > 0)
        assert busy == ["0", "1"], f"one worker did all the work: {sent_by_worker}"
        assert _samples(exposition, "notify_workers_running") == [({"service": "invitations"}, 2.0)]

        async with httpx.AsyncClient(timeout=10.0) as client:
            health = await client.get(f"http://127.0.0.1:{service.admin_port}/healthz")
            public_metrics = await client.get(f"http://127.0.0.1:{service.http_port}/metrics")
        assert health.status_code == 200
        assert public_metrics.status_code == 404, "metrics are for the admin port only"
    finally:
        code = await asyncio.to_thread(service.terminate, 120.0) if service.running else None

    log = service.log_text()
    worker_pids = _worker_pids(service)
    assert len(worker_pids) == 2, log[-3000:]
    assert code == 0, log[-3000:]
    assert log.count("FastStream app shut down gracefully") == 2
    assert "every worker stopped (exit code 0)" in log
    assert not [pid for pid in worker_pids if _alive(pid)], "a worker outlived its supervisor"


async def test_a_worker_killed_by_the_system_is_started_again_and_the_instance_is_ready_again(
    kafka_bootstrap: str, postgres_database: str, tmp_path: Path
) -> None:
    service, _ = await _invitations_with_two_workers(kafka_bootstrap, postgres_database, tmp_path)
    try:
        await wait_until(lambda: asyncio.to_thread(service.ready), within=90, interval=0.5, what="both workers ready")
        first, second = _worker_pids(service)

        os.kill(second, signal.SIGKILL)  # as the kernel's OOM killer would

        async def back_to_two_and_counted() -> bool:
            exposition = await _metrics(service)
            restarts = _samples(exposition, "notify_worker_restarts_total")
            running = _samples(exposition, "notify_workers_running")
            return restarts == [({"service": "invitations"}, 1.0)] and running == [({"service": "invitations"}, 2.0)]

        await wait_until(back_to_two_and_counted, within=90, interval=0.5, what="the killed worker started again")
        await wait_until(lambda: asyncio.to_thread(service.ready), within=90, interval=0.5, what="ready again")
        assert _worker_pids(service)[:2] == [first, second]
        assert len(_worker_pids(service)) == 3
        assert _alive(first), "the other worker carried on"
        assert f"worker 1 (pid {second}) exited with code -9" in service.log_text()
    finally:
        code = await asyncio.to_thread(service.terminate, 120.0) if service.running else None
    assert code == 0, service.log_text()[-3000:]
    assert not [pid for pid in _worker_pids(service) if _alive(pid)]


async def test_when_the_supervisor_is_killed_outright_its_workers_stop_too(
    kafka_bootstrap: str, postgres_database: str, tmp_path: Path
) -> None:
    service, _ = await _invitations_with_two_workers(kafka_bootstrap, postgres_database, tmp_path)
    try:
        await wait_until(lambda: asyncio.to_thread(service.ready), within=90, interval=0.5, what="both workers ready")
        workers = _worker_pids(service)
        assert len(workers) == 2
    finally:
        # kill -9 leaves the supervisor no chance to stop its workers: the kernel's parent-death signal must.
        await asyncio.to_thread(service.kill)

    await wait_until(lambda: not any(_alive(pid) for pid in workers), within=60, interval=0.5, what="workers gone")
    assert service.log_text().count("FastStream app shut down gracefully") == 2, "each worker drained on its way out"


async def test_the_ingest_as_two_workers_publishes_each_posted_event_once_and_stops_on_sigterm(
    kafka_bootstrap: str, postgres_database: str, tmp_path: Path
) -> None:
    topics = Topics(f"workers{uuid.uuid4().hex[:8]}.")
    await create_all_topics(kafka_bootstrap, topics)
    http_port, admin_port = free_port(), free_port()
    environment = os.environ | {
        "WORKERS": "2",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TOPIC_PREFIX": topics.prefix,
        "INGEST_API_KEYS": json.dumps({SCHOOL: api_key_digest(SCHOOL_KEY)}),
        "INGEST_SCHOOLS": json.dumps({SCHOOL: {"name": "Bjølsen skole", "sms_sender_id": "Bjolsen"}}),
        "INGEST_DATABASE_URL": postgres_database,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(http_port),
        "ADMIN_PORT": str(admin_port),
    }
    log_path = tmp_path / "ingest.log"
    process = _spawn("notify-ingest", environment, log_path)
    event_ids = [str(uuid.uuid4()) for _ in range(EVENTS)]
    headers = {"Authorization": f"Bearer {SCHOOL_KEY}", "Content-Type": "application/cloudevents+json"}

    async def post(event_id: str) -> httpx.Response:
        body = samples.meeting_created(event_id=event_id).model_dump_json(exclude_none=True)
        # A connection of its own each time: the kernel gives each new connection to one of the workers.
        async with httpx.AsyncClient(timeout=30.0) as client:
            return await client.post(f"http://127.0.0.1:{http_port}/v1/events", content=body, headers=headers)

    async def ready() -> bool:
        async with httpx.AsyncClient(timeout=10.0) as client:
            with contextlib.suppress(httpx.TransportError):
                return (await client.get(f"http://127.0.0.1:{admin_port}/readyz")).status_code == 200
        assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
        return False

    try:
        await wait_until(ready, within=90, interval=0.5, what="both ingest workers ready")
        first = [await post(event_id) for event_id in event_ids]
        again = [await post(event_id) for event_id in event_ids[:3]]
        async with httpx.AsyncClient(timeout=10.0) as client:
            exposition = (await client.get(f"http://127.0.0.1:{admin_port}/metrics")).text
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 120)

    assert [response.status_code for response in first] == [202] * EVENTS
    assert [response.json()["duplicate"] for response in again] == [True] * 3
    records = await records_on(kafka_bootstrap, topics.meeting_created)
    assert sorted(json.loads(record.value)["id"] for record in records) == sorted(event_ids)
    accepted = sum(
        value
        for labels, value in _samples(exposition, "notify_ingest_requests_total")
        if labels["outcome"] == "accepted"
    )
    assert accepted == EVENTS
    assert _samples(exposition, "notify_workers_running") == [({"service": "ingest"}, 2.0)]
    assert code == 0, log_path.read_text(errors="replace")[-3000:]


def test_more_than_one_worker_on_sqlite_stops_start_up_naming_the_setting(tmp_path: Path) -> None:
    faststream = Path(sys.executable).parent / "faststream"
    environment = os.environ | {
        "WORKERS": "2",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}",
        "HTTP_PORT": "18080",
        "ADMIN_PORT": "19090",
    }
    finished = subprocess.run(
        [str(faststream), "run", "notify_invitations.app:create_app", "--factory"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 2
    assert "WORKERS=2 needs a PostgreSQL database URL" in finished.stderr
    assert not (tmp_path / "notify.db").exists(), "nothing was started"
