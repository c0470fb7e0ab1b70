"""The phases of a run: a drain per N, the paced run and the sink ceilings, each with fresh topics and database."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline_events import CHANNELS, Published, analyse, ledger_summary, publish
from pipeline_parts import Broker, Deployment, ServiceInstance, Sinks
from pipeline_processes import BENCH, Children, ProcFigures, calibration_ms, own_figures, say
from pipeline_profile import Profiler
from pipeline_waiting import wait_for_deliveries, wait_for_group
from rich.progress import Progress

from notify_shared.contract import ALL_EVENT_TYPES
from notify_shared.testing.kafka import create_topics
from notify_shared.topics import MEETING_CREATED, Topics


@dataclass
class Options:
    sizes: list[int]
    guardians: int
    partitions: int
    replicas: int
    workers: list[int]
    """Worker processes per instance (WORKERS); one drain per value and N, side by side in the tables."""
    database_url: str | None
    paced_seconds: float
    paced_rate: float | None
    blast: int
    smtp_connections: int
    sms_concurrency: int
    naive: int
    naive_rendered: int
    ceilings: bool
    profile: str
    profile_rate: int
    timeout: float
    stall: float
    settings: dict[str, str] = field(default_factory=dict)
    provider_latency: float = 0.0


@asynccontextmanager
async def database(options: Options, work_dir: Path, name: str) -> AsyncIterator[str]:
    """A fresh SQLite file, or a fresh database on the PostgreSQL server (dropped afterwards)."""
    if options.database_url is None:
        yield f"sqlite+aiosqlite:///{work_dir / f'{name}.db'}"
        return
    from notify_shared.testing.databases import fresh_postgres_database  # noqa: PLC0415 - PostgreSQL only

    async with fresh_postgres_database(options.database_url, prefix="notify_bench") as url:
        yield url


async def fresh_topics(bootstrap: str, partitions: int) -> Topics:
    """Topics of this run only (a prefix of its own), with `partitions` partitions for the events."""
    topics = Topics(f"bench{uuid.uuid4().hex[:8]}.")
    await create_topics(bootstrap, [topics.for_event_type(name) for name in ALL_EVENT_TYPES], partitions)
    await create_topics(bootstrap, [topics.notification_status, topics.dead_letter], partitions)
    return topics


async def probe(children: Children, work_dir: Path, name: str, *arguments: str, within: float) -> dict[str, Any]:
    """Run bench/pipeline_probes.py in a fresh process and return its figures."""
    out = work_dir / f"probe-{name}.json"
    process = children.spawn(
        [
            sys.executable,
            str(BENCH / "pipeline_probes.py"),
            *arguments,
            "--out",
            str(out),
            "--time-limit",
            str(within),
        ],
        log=work_dir / f"probe-{name}.log",
    )
    try:
        code = await asyncio.to_thread(process.wait, within + 60)
    except subprocess.TimeoutExpired:
        code = None
    children.stop(process)
    if code != 0 or not out.exists():
        tail = (work_dir / f"probe-{name}.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"probe {name} failed (exit {code}):\n{tail}")
    figures: dict[str, Any] = json.loads(out.read_text())
    return figures


async def drain(
    *,
    options: Options,
    children: Children,
    broker: Broker,
    work_dir: Path,
    size: int,
    workers: int,
    progress: Progress,
) -> dict[str, Any]:
    """One N: publish, Kafka ceiling, then the service instance(s) draining the backlog into the sinks."""
    members = options.replicas * workers
    figures: dict[str, Any] = {
        "events": size,
        "workers": workers,
        "load_average_at_start": list(os.getloadavg()),
        "calibration_ms_at_start": calibration_ms(),
    }
    topics = await fresh_topics(broker.bootstrap, options.partitions)
    topic = topics.for_event_type(MEETING_CREATED)
    # Every file, database and group of this drain has the run's own name: --workers 1,2,1,2 drains one N twice
    # with the same worker count, and a log appended to or a SQLite ledger reused would count the first one too.
    group = f"bench-invitations-{(run := uuid.uuid4().hex[:8])}"
    published = Published(guardians=options.guardians)
    if members == 1:
        # The backlog is on the topic before the service starts: what is measured is how fast it drains.
        published = await publish(broker.bootstrap, topics, size, options.guardians, progress, what=f"publish {size:,}")
        if options.ceilings:
            say(f"N={size:,}: Kafka ceiling (plain aiokafka consumer) …")
            arguments = ("kafka", "--bootstrap", broker.bootstrap, "--topic", topic, "--expected", str(size))
            figures["kafka_ceiling"] = await probe(children, work_dir, f"kafka-{size}", *arguments, within=600)
    async with database(options, work_dir, f"invitations-{size}-{workers}w-{run}") as url:
        sinks = Sinks(children, work_dir, f"sinks-{size}-{workers}w-{run}", options.provider_latency)
        await sinks.start()
        deployment = Deployment(broker.bootstrap, topics, group, url, sinks, work_dir, options.settings)
        services = [
            ServiceInstance(children, deployment, f"service-{size}-{workers}w-{run}-{n + 1}", workers=workers)
            for n in range(options.replicas)
        ]
        profiler = Profiler(children, work_dir, options.profile_rate) if options.profile == "py-spy" else None
        before = {"sinks": sinks.proc(), "broker": broker.proc()}
        harness_before = own_figures()["cpu_seconds"]
        say(f"N={size:,}: starting {options.replicas} service instance(s) of {workers} worker process(es) …")
        started = time.time()
        figures["ready_seconds"] = await start_one_by_one(services)
        if profiler is not None:
            profiler.attach(services[0].pid, subprocesses=workers > 1)
        if members > 1:
            # Publish once every instance (every worker) holds its partitions, so the assignment, not who joined
            # first, decides who does what.
            figures["group"] = await wait_for_group(broker.bootstrap, group, members, topic)
            say(f"N={size:,}: group stable, partitions per member: {figures['group']['partitions_of_topic']}")
            published = await publish(broker.bootstrap, topics, size, options.guardians, progress, what="publish")
        figures["publish"] = _publish_figures(published)
        figures["wait"] = await wait_for_deliveries(
            sinks,
            services,
            published.notifications,
            progress,
            what=f"drain N={size:,}",
            within=options.timeout,
            stall=options.stall,
        )
        figures["service_metrics"] = [await service.metrics() for service in services]
        broker_after = broker.proc()
        figures["services"] = [await service.stop() for service in services]
        records = await sinks.records()
        figures["sinks_process"] = await sinks.stop()
        figures["broker_process"] = asdict(broker_after) if broker_after else {}
        figures["harness_process"] = {"cpu_seconds_during_drain": own_figures()["cpu_seconds"] - harness_before}
        figures["ledger"] = await ledger_summary(url)
        if profiler is not None:
            say("summarising the py-spy profile …")
            figures["profile"] = await profiler.finish()
    result = analyse(records, published.expected())
    result.pop("latency_ms")  # in a drain, "latency" is mostly time spent waiting in the backlog
    if "last_acceptance" in result:
        result["service_start_to_last_seconds"] = result["last_acceptance"] - started
    figures["pipeline"] = result
    figures["database"] = "postgresql" if options.database_url else "sqlite"
    figures["cost"] = _costs(figures, before, notifications=max(result["accepted"], 1))
    return figures


async def start_one_by_one(services: Sequence[ServiceInstance]) -> list[float]:
    """Start each instance once the one before is ready; returns the seconds each took to become ready.

    Instances starting together on a fresh PostgreSQL database can both try to create the meeting-state table,
    and the loser exits (notify_invitations.meeting_states creates it without the ledger's advisory lock), so
    they start one after the other, as a rolling start would.
    """
    ready = []
    for service in services:
        service.start()
        ready.append(await service.wait_ready())
    return ready


def _costs(figures: dict[str, Any], before: dict[str, ProcFigures | None], *, notifications: int) -> dict[str, float]:
    """CPU per notification of each process, counted from the moment the drain began (service: from ready)."""
    costs = {
        "service_cpu_ms_per_notification": 1000
        * sum(service.get("cpu_seconds_after_ready", math.nan) for service in figures["services"])
        / notifications
    }
    for name, key in (("sinks", "sinks_process"), ("broker", "broker_process")):
        start = before[name]
        if start is not None and figures[key]:
            figures[key]["cpu_seconds_during_drain"] = figures[key]["cpu_seconds"] - start.cpu_seconds
            costs[f"{name}_cpu_ms_per_notification"] = 1000 * figures[key]["cpu_seconds_during_drain"] / notifications
    return costs


def _publish_figures(published: Published) -> dict[str, Any]:
    count = len(published.event_ids)
    return {
        "events": count,
        "notifications": published.notifications,
        "bytes": published.bytes,
        "mean_event_bytes": published.bytes / max(count, 1),
        "seconds": published.seconds,
        "events_per_second": count / max(published.seconds, 1e-9),
    }


async def paced(
    *, options: Options, children: Children, broker: Broker, work_dir: Path, rate: float, progress: Progress
) -> dict[str, Any]:
    """A fresh service gets events at `rate` per second; latency = acceptance − event time."""
    events = max(1, round(rate * options.paced_seconds))
    figures: dict[str, Any] = {
        "events_per_second": rate,
        "notifications_per_second": rate * options.guardians * len(CHANNELS),
        "events": events,
        "load_average_at_start": list(os.getloadavg()),
        "calibration_ms_at_start": calibration_ms(),
    }
    topics = await fresh_topics(broker.bootstrap, options.partitions)
    group = f"bench-paced-{uuid.uuid4().hex[:8]}"
    async with database(options, work_dir, "invitations-paced") as url:
        sinks = Sinks(children, work_dir, "sinks-paced", options.provider_latency)
        await sinks.start()
        service = ServiceInstance(
            children, Deployment(broker.bootstrap, topics, group, url, sinks, work_dir, options.settings), "paced"
        )
        service.start()
        await service.wait_ready()
        # Publish only once the service holds its partitions, so no event waits for the group to form.
        figures["group"] = await wait_for_group(broker.bootstrap, group, 1, topics.for_event_type(MEETING_CREATED))
        publishing = asyncio.create_task(
            publish(broker.bootstrap, topics, events, options.guardians, progress, rate=rate, what="paced publish")
        )
        waiting = asyncio.create_task(
            wait_for_deliveries(
                sinks,
                [service],
                events * options.guardians * len(CHANNELS),
                progress,
                what="paced delivery",
                within=options.paced_seconds + options.stall + 60,
                stall=options.paced_seconds + options.stall,
            )
        )
        published = await publishing
        figures["publish"] = _publish_figures(published) | {"achieved_events_per_second": len(published.event_ids)}
        figures["publish"]["achieved_events_per_second"] = len(published.event_ids) / max(published.seconds, 1e-9)
        figures["wait"] = await waiting
        figures["service_metrics"] = [await service.metrics()]
        figures["services"] = [await service.stop()]
        records = await sinks.records()
        figures["sinks_process"] = await sinks.stop()
        figures["ledger"] = await ledger_summary(url)
    figures["pipeline"] = analyse(records, published.expected())
    return figures


async def sink_ceilings(options: Options, children: Children, work_dir: Path) -> dict[str, Any]:
    """Each sink blasted directly, and the naive peer; each against a fresh sink process."""
    results: dict[str, Any] = {
        "load_average_at_start": list(os.getloadavg()),
        "calibration_ms_at_start": calibration_ms(),
    }
    for name, arguments in (
        ("smtp", ("--count", str(options.blast), "--connections", str(options.smtp_connections))),
        ("sms", ("--count", str(options.blast), "--concurrency", str(options.sms_concurrency))),
        ("naive", ("--count", str(options.naive), "--rendered-count", str(options.naive_rendered))),
    ):
        sinks = Sinks(children, work_dir, f"sinks-{name}")
        await sinks.start()
        try:
            before = sinks.proc()
            say(f"ceiling: {name} …")
            target = ("--url", sinks.sms_url) if name == "sms" else ("--port", str(sinks.smtp_port))
            figures = await probe(children, work_dir, name, name, *target, *arguments, within=600)
            stats = await sinks.stats()
        finally:
            sink_process = await sinks.stop()
        if before and sink_process:
            sink_process["cpu_seconds_during_probe"] = sink_process["cpu_seconds"] - before.cpu_seconds
            accepted = int(stats["smtp"]) + int(stats["sms"])
            sink_process["cpu_ms_per_message"] = 1000 * sink_process["cpu_seconds_during_probe"] / max(accepted, 1)
        results[name] = figures | {"sink_accepted": stats, "sink_process": sink_process}
    return results
