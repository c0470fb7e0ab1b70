"""The digest benchmark's service processes: each phase runs in a fresh interpreter started by `digest_bench.py`,
so its peak RSS is that of the service code alone.

    python bench/digest_bench_service.py fill --plan PLAN --out OUT
    python bench/digest_bench_service.py digest --plan PLAN --out OUT --smtp-port PORT [--instance NAME] [--profile]

`fill` stores the week's items through the service's own handler; `digest` opens the runtime as the service does
and calls `DigestRunner.run_due()` once at the weekly slot (one replica of several, with `--instance`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import importlib
import json
import pstats
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from digest_bench_plan import WEEK_START, WEEKLY_SLOT, Plan, message_events  # bench/, on the path

from notify_digest.runtime import Runtime
from notify_digest.settings import DigestSettings
from notify_shared.contract import NotificationStatusReport
from notify_shared.kafka.outbound import KafkaStatusSink

RSS_SAMPLE_SECONDS = 0.5

# ------------------------------------------------------------------------------------- measuring the process


def peak_rss_mib() -> float:
    """The process's peak resident set size so far (ru_maxrss is in KiB on Linux; it lags VmRSS a little)."""
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, current_rss_mib())


def current_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CallTimes:
    calls: int = 0
    seconds: float = 0.0
    max_seconds: float = 0.0

    def add(self, seconds: float) -> None:
        self.calls += 1
        self.seconds += seconds
        self.max_seconds = max(self.max_seconds, seconds)

    def figures(self) -> dict[str, float]:
        return {
            "calls": self.calls,
            "total_seconds": self.seconds,
            "mean_ms": self.seconds / self.calls * 1000 if self.calls else 0.0,
            "max_ms": self.max_seconds * 1000,
        }


class Timings:
    """Wraps a few of the service's own functions to time each call; the wrapper only delegates.

    Synchronous functions (rendering, building the sections) run on the event loop, so their time is loop
    time. Asynchronous ones report latency: their own work plus waiting for a connection, a lock or the peer.
    """

    def __init__(self) -> None:
        self.times: dict[str, CallTimes] = {}
        self._restore: list[tuple[object, str, object]] = []

    def wrap_async(self, owner: object, name: str, label: str) -> None:
        original: Callable[..., Awaitable[Any]] = getattr(owner, name)
        times = self.times.setdefault(label, CallTimes())

        @functools.wraps(original)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                times.add(time.perf_counter() - started)

        self._replace(owner, name, timed)

    def wrap_sync(self, owner: object, name: str, label: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)
        times = self.times.setdefault(label, CallTimes())

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                times.add(time.perf_counter() - started)

        self._replace(owner, name, timed)

    def _replace(self, owner: object, name: str, replacement: object) -> None:
        self._restore.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    def restore(self) -> None:
        for owner, name, original in reversed(self._restore):
            setattr(owner, name, original)
        self._restore.clear()

    def figures(self) -> dict[str, dict[str, float]]:
        return {label: times.figures() for label, times in self.times.items()}


def instrument_the_service() -> Timings:
    """Time the steps of sending a digest. Must run before `Runtime.open` (the dispatcher keeps its renderer)."""
    from notify_digest import runner  # noqa: PLC0415 - after the import baseline
    from notify_digest.store import DigestStore  # noqa: PLC0415
    from notify_shared.channels import SmtpEmailChannel  # noqa: PLC0415
    from notify_shared.ledger import DeliveryLedger  # noqa: PLC0415
    from notify_shared.rendering.render_once import RenderOnce  # noqa: PLC0415

    timings = Timings()
    timings.wrap_async(DigestStore, "waiting_schools", "store.waiting_schools")
    timings.wrap_async(DigestStore, "assign", "store.assign (per school)")
    timings.wrap_async(DigestStore, "claim_digests", "store.claim_digests (per batch)")
    timings.wrap_async(DigestStore, "items_of_many", "store.items_of_many (per batch)")
    timings.wrap_async(DeliveryLedger, "begin_many", "ledger.begin (claim)")
    timings.wrap_sync(runner, "build_sections", "build_sections")
    # Every service renders through RenderOnce (notify_shared.delivery.assembly); a digest, each guardian's own,
    # falls through it to rendering alone.
    timings.wrap_sync(RenderOnce, "__call__", "render_notification")
    timings.wrap_async(SmtpEmailChannel, "send_email", "smtp send_email (MIME + SMTP)")
    timings.wrap_async(DeliveryLedger, "record_and_queue", "ledger.record_and_queue")
    timings.wrap_async(DigestStore, "finish_digests", "store.finish_digests (per batch)")
    return timings


# ------------------------------------------------------------------------------------------------ children


class SettableClock:
    """Stands still until moved."""

    def __init__(self, moment: datetime) -> None:
        self.now = moment.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now


class _DiscardingPublisher:
    async def publish(self, message: Any, /, *, key: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
        return None


class CountingStatusSink:
    """Builds and encodes each status event as the Kafka sink does, publishes nothing, keeps only counts."""

    def __init__(self) -> None:
        self._encoder = KafkaStatusSink(_DiscardingPublisher(), service="digest")
        self.by_status: dict[str, int] = {}
        self.first_at: float | None = None
        self.last_at: float | None = None

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    async def publish_status(self, report: NotificationStatusReport) -> None:
        await self._encoder.publish_status(report)
        status = report.status.value
        self.by_status[status] = self.by_status.get(status, 0) + 1
        self.last_at = time.perf_counter()
        if self.first_at is None:
            self.first_at = self.last_at


def service_settings(plan: Plan, *, smtp_port: int | None = None, instance: str = "bench-replica") -> DigestSettings:
    """The service's settings for this run: defaults, except the database, the SMTP server, the batch size and the
    instance id."""
    work_dir = Path(plan.work_dir)
    fields: dict[str, Any] = {
        "database_url": plan.database_url,
        "outbox_dir": work_dir / "outbox",
        "instance_id": instance,
        "batch_size": plan.batch_size,
    }
    if smtp_port is not None:
        fields |= {"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "smtp_security": "none"}
    return DigestSettings(**fields)


def _import_the_service() -> dict[str, float]:
    # What a service process has loaded before it opens anything: the app module pulls in FastStream and aiokafka.
    importlib.import_module("notify_digest.app")
    return {"rss_after_import_mib": current_rss_mib()}


async def child_fill(plan: Plan) -> dict[str, Any]:
    baseline = _import_the_service()
    clock = SettableClock(WEEK_START)
    runtime = Runtime()
    await runtime.open(service_settings(plan), status_sink=CountingStatusSink(), clock=clock)
    try:
        handle_seconds = 0.0
        build_seconds = 0.0
        per_event: list[float] = []
        cpu_before = cpu_seconds()
        for group in range(plan.groups):
            built = time.perf_counter()
            events = message_events(plan, group)  # the Kafka decoder's work in the service; not timed
            build_seconds += time.perf_counter() - built
            for event in events:
                # Each message is handled at its posting time (a group's arrive a second after the previous group's).
                clock.now = (event.data.posted_at + timedelta(seconds=group)).astimezone(UTC)
                one = time.perf_counter()
                await runtime.service.handle(event)
                done = time.perf_counter()
                per_event.append(done - one)
                handle_seconds += done - one
        cpu = cpu_seconds() - cpu_before
        counts = await runtime.store.counts()
    finally:
        await runtime.close()
    per_event.sort()
    return baseline | {
        "events": len(per_event),
        "seconds": handle_seconds,
        "build_events_seconds": build_seconds,
        "cpu_seconds": cpu,
        "items_per_second": counts["items_waiting"] / handle_seconds,
        "per_event_ms": {
            "p50": per_event[len(per_event) // 2] * 1000,
            "p99": per_event[min(len(per_event) - 1, int(len(per_event) * 0.99))] * 1000,
            "max": per_event[-1] * 1000,
        },
        "states": counts,
        "peak_rss_mib": peak_rss_mib(),
    }


Sample = tuple[float, int, float, float]
"""Seconds into the run, statuses reported so far, RSS now, peak RSS so far (MiB)."""
MILESTONES = (1_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000)


async def _sample_rss(sink: CountingStatusSink, started: float, samples_out: list[Sample]) -> None:
    while True:
        samples_out.append((time.perf_counter() - started, sink.total, current_rss_mib(), peak_rss_mib()))
        await asyncio.sleep(RSS_SAMPLE_SECONDS)


def _rss_at_milestones(samples_in: Sequence[Sample]) -> dict[str, dict[str, float]]:
    """RSS and peak RSS so far at the first sample at which 1,000, 10,000, … digests had been sent."""
    found: dict[str, dict[str, float]] = {}
    for milestone in MILESTONES:
        for _, sent, rss, peak in samples_in:
            if sent >= milestone:
                found[f"{milestone:,}"] = {"sent": sent, "rss_mib": rss, "peak_rss_so_far_mib": peak}
                break
    return found


async def child_digest(
    plan: Plan, *, smtp_port: int, time_limit: float, profile: bool, instance: str
) -> dict[str, Any]:
    baseline = _import_the_service()
    timings = instrument_the_service()
    sink = CountingStatusSink()
    clock = SettableClock(WEEKLY_SLOT)  # the moment the weekly slot passes; the run itself takes real time
    runtime = Runtime()
    opening = time.perf_counter()
    await runtime.open(service_settings(plan, smtp_port=smtp_port, instance=instance), status_sink=sink, clock=clock)
    opened = time.perf_counter()
    rss_opened = current_rss_mib()
    before = await runtime.store.counts()
    samples_taken: list[Sample] = []
    profiler = cProfile.Profile() if profile else None
    complete = True
    try:
        cpu_before = cpu_seconds()
        started = time.perf_counter()
        sampler = asyncio.create_task(_sample_rss(sink, started, samples_taken))
        if profiler:
            profiler.enable()
        run = asyncio.create_task(runtime.runner.run_due())
        done, _ = await asyncio.wait([run], timeout=time_limit or None)
        if not done:
            complete = False
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run
        finished = time.perf_counter()
        if profiler:
            profiler.disable()
        report = asdict(run.result()) if complete else None
        cpu = cpu_seconds() - cpu_before
        peak = peak_rss_mib()
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        samples_taken.append((finished - started, sink.total, current_rss_mib(), peak))
        after = await runtime.store.counts()
    finally:
        await runtime.close()
        timings.restore()
    seconds = finished - started
    sent = sink.by_status.get("sent", 0)
    first_status = (sink.first_at - started) if sink.first_at else None
    step = max(1, len(samples_taken) // 60)
    return baseline | {
        "complete": complete,
        "open_seconds": opened - opening,
        "rss_after_open_mib": rss_opened,
        "before": before,
        "after": after,
        "report": report,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "statuses": sink.by_status,
        "digests_per_second": sent / seconds if seconds else 0.0,
        "first_status_after_seconds": first_status,
        "send_rate_per_second": (
            (sent - 1) / (sink.last_at - sink.first_at) if sink.first_at and sink.last_at and sent > 1 else None
        ),
        "peak_rss_mib": peak,
        "max_sampled_rss_mib": max(rss for _, _, rss, _ in samples_taken),
        "rss_at_milestones": _rss_at_milestones(samples_taken),
        "rss_samples": [
            {"seconds": round(at, 2), "sent": count, "rss_mib": round(rss, 1), "peak_rss_so_far_mib": round(top, 1)}
            for at, count, rss, top in [*samples_taken[:-1:step], samples_taken[-1]]
        ],
        "steps": timings.figures(),
        "profile": profile_figures(profiler) if profiler else None,
    }


AREAS: tuple[tuple[str, str], ...] = (
    ("select.epoll", "event loop: waiting (idle)"),
    ("/sqlalchemy/", "SQLAlchemy"),
    ("/aiosqlite/", "aiosqlite / asyncpg (driver, loop side)"),
    ("/asyncpg/", "aiosqlite / asyncpg (driver, loop side)"),
    ("/jinja2/", "rendering (Jinja, Markdown, sanitising)"),
    ("/markdown_it/", "rendering (Jinja, Markdown, sanitising)"),
    ("/mdurl/", "rendering (Jinja, Markdown, sanitising)"),
    ("/linkify_it/", "rendering (Jinja, Markdown, sanitising)"),
    ("/markupsafe/", "rendering (Jinja, Markdown, sanitising)"),
    ("/bleach/", "rendering (Jinja, Markdown, sanitising)"),
    ("/nh3/", "rendering (Jinja, Markdown, sanitising)"),
    ("/babel/", "rendering (Jinja, Markdown, sanitising)"),
    ("notify_shared/rendering/", "rendering (Jinja, Markdown, sanitising)"),
    ("/aiosmtplib/", "SMTP client and MIME (aiosmtplib, email)"),
    ("/email/", "SMTP client and MIME (aiosmtplib, email)"),
    ("notify_shared/channels/", "SMTP client and MIME (aiosmtplib, email)"),
    ("/pydantic", "pydantic (validation, JSON)"),
    ("/json/", "json"),
    ("/asyncio/", "asyncio machinery"),
    ("selectors.py", "asyncio machinery"),
    ("digest_bench.py", "this benchmark's timing wrappers"),
    ("/notify_digest/", "service code (digest, delivery, ledger)"),
    ("/notify_shared/", "service code (digest, delivery, ledger)"),
)


def _area(filename: str, name: str) -> str:
    where = f"{filename}:{name}"
    for needle, area in AREAS:
        if needle in where:
            return area
    return "other (builtins, stdlib)"


def profile_figures(profiler: cProfile.Profile) -> dict[str, Any]:
    """Own time (tottime) per function on the event-loop thread, grouped by library; a built-in function's time
    goes to the library that called it. SQLite's own work runs in aiosqlite's thread and does not show up here
    (the loop waits for it in epoll, or for the GIL)."""
    stats = pstats.Stats(profiler)
    entries: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    by_area: dict[str, float] = {}
    functions = []
    for (filename, line, name), (_, calls, own, cumulative, callers) in entries.items():
        functions.append((own, calls, cumulative, f"{Path(filename).name}:{line}({name})"))
        if filename == "~" and "select.epoll" not in name and callers:
            for (caller_file, _, caller_name), caller_figures in callers.items():
                area = _area(caller_file, caller_name)
                by_area[area] = by_area.get(area, 0.0) + caller_figures[2]
            continue
        area = _area(filename, name)
        by_area[area] = by_area.get(area, 0.0) + own
    functions.sort(reverse=True)
    return {
        "total_seconds": sum(by_area.values()),
        "by_area_seconds": dict(sorted(by_area.items(), key=lambda item: -item[1])),
        "top_functions": [
            {"function": where, "own_seconds": own, "calls": calls, "cumulative_seconds": cumulative}
            for own, calls, cumulative, where in functions[:25]
        ],
    }


def run_child(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", choices=["fill", "digest"])
    parser.add_argument("--plan", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--smtp-port", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=0.0)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--instance", default="bench-replica")
    args = parser.parse_args(argv)
    from notify_shared.logs import configure_logging  # noqa: PLC0415 - as the service does at start

    configure_logging()
    plan = Plan.load(args.plan)
    if args.phase == "fill":
        result = asyncio.run(child_fill(plan))
    else:
        result = asyncio.run(
            child_digest(
                plan, smtp_port=args.smtp_port, time_limit=args.time_limit, profile=args.profile, instance=args.instance
            )
        )
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    run_child(sys.argv[1:])
