"""Benchmark of the digest service: one weekly digest run for many guardians, its time and its peak memory.

    uv run python bench/digest_bench.py                        # 100,000 guardians × 5 messages, SQLite
    uv run python bench/digest_bench.py --guardians 10000      # a tenth: peak RSS should be about the same
    uv run python bench/digest_bench.py --guardians 10000 --batch-size 1000   # RSS grows with the batch instead
    uv run python bench/digest_bench.py --database-url postgresql+asyncpg://postgres@127.0.0.1:55492/notify

Two phases, each in a fresh child process (so its peak RSS is that of the service code alone):

1. fill: the service's runtime is opened as at start-up and fed realistic `message.posted` events through
   `DigestService.handle` (what the Kafka handler calls: `Intake.on_message`, which stores one digest item per
   guardian in one INSERT). Each event is addressed to `--per-message` guardians of one school who want a
   weekly digest by email; every guardian gets `--items` messages, one each school day at 09:00 (Oslo) of one
   week, and each event is handled with the clock at its posting time, before the weekly slot (Friday 14:00).
   Events are built outside the timed section, group by group.
2. digest: a new process opens the runtime (delivery ledger, SMTP channel, dispatcher, digest store, runner)
   with its default settings apart from the database, the SMTP server, the instance id and `--batch-size`,
   sets the clock to Friday 14:00 and calls `DigestRunner.run_due()` once, which is the alarm's work: assign
   every waiting item to its guardian's digest (one UPDATE and one INSERT per school), then claim digests
   `--batch-size` at a time and send each over SMTP to a local aiosmtpd sink in the parent process. The sink
   only counts what it accepts (and keeps the first message), so the parent does not grow with the run.

Peak RSS of the service process comes from `getrusage` (and /proc/self/status, sampled twice a second with the
number of digests sent so far). The database is a SQLite file in a temporary folder, or (with `--database-url`)
a fresh database created on that PostgreSQL server and dropped afterwards. Only loopback traffic; every wait is
bounded (`--time-limit` stops the digest run early and reports what it measured up to then).
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
import socket
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from machine_info import machine  # bench/, on the path when a script here runs

from notify_digest.runtime import Runtime
from notify_digest.settings import DigestSettings
from notify_shared import samples
from notify_shared.contract import Channel, DeliveryMode, MessagePosted, NotificationStatusReport, PostedMessage, School
from notify_shared.kafka.outbound import KafkaStatusSink

OSLO = ZoneInfo("Europe/Oslo")
WEEK_START = datetime(2026, 11, 30, 9, 0, tzinfo=OSLO)
"""Monday 09:00: the first message of the week is posted; one a school day, Monday to Friday."""
MAX_ITEMS = 75
"""Above five a day the messages go 20 minutes apart; 15 a day still end before the Friday slot."""
WEEKLY_SLOT = datetime(2026, 12, 4, 14, 0, tzinfo=OSLO)
"""Friday 14:00, the service's default weekly slot (DIGEST_WEEKLY_DAY, DIGEST_WEEKLY_AT): the digest run."""
CHILD_TIMEOUT_SECONDS = 3600.0
RSS_SAMPLE_SECONDS = 0.5

# Five messages a school might post in a week; a guardian with --items above 5 gets them again, numbered.
MESSAGES: tuple[tuple[str, str, str], ...] = (
    (
        "Ole Lærer",
        "Tur til Sognsvann fredag",
        "Hei alle!\n\nPå fredag går vi på tur til **Sognsvann**. Husk:\n\n- matpakke og drikke\n"
        "- varme klær og gode sko\n\nVi er tilbake ca. kl. 14.",
    ),
    (
        "Kari Rektor",
        "Foreldremøte tirsdag 8. desember",
        "Velkommen til foreldremøte tirsdag kl. 18.00 i aulaen.\n\n1. Skoleåret så langt\n2. Leirskolen i mai\n"
        "3. Eventuelt\n\nGi beskjed til kontaktlæreren hvis du ikke kan komme.",
    ),
    (
        "Per Gymlærer",
        "Kroppsøving ute fra neste uke",
        "Fra mandag har vi *kroppsøving* ute. Ta med varme klær, lue og joggesko. Timeplanen ligger på "
        "https://skole.example.no/timeplan.",
    ),
    (
        "Anne Bibliotekar",
        "Lesekampanje i desember",
        "I desember leser vi om kapp! Hver elev får en leselogg. Målet er **20 minutter lesing hver dag**.\n\n"
        "Biblioteket er åpent i alle storefriminutt.",
    ),
    (
        "Kari Rektor",
        "Nytt fra skolen denne uka",
        "Takk for en fin uke!\n\n## Kommende\n\n- Juleavslutning torsdag 17. desember kl. 17\n"
        "- Siste skoledag før ferien er fredag 18. desember\n\n## Påminnelser\n\nMerk klær og sko med navn. "
        "Glemte klær legges i kurven ved inngangen og gis bort til veldedighet etter jul.\n\n"
        "Ha en god helg!",
    ),
)
GROUP_NAMES = ("1.–4. trinn", "5.–7. trinn", "8.–10. trinn")


# --------------------------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    """What to store and send; shared by the parent and its children through a JSON file."""

    guardians: int
    items: int
    per_message: int
    per_school: int
    batch_size: int
    database_url: str
    work_dir: str

    @property
    def groups(self) -> int:
        """Groups of `per_message` guardians; each group gets the same `items` messages."""
        return self.guardians // self.per_message

    @property
    def schools(self) -> int:
        return -(-self.guardians // self.per_school)

    @property
    def events(self) -> int:
        return self.groups * self.items

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> Plan:
        return cls(**json.loads(path.read_text()))


def posted_at(number: int) -> datetime:
    """When the `number`-th message (0-based) of the week is posted: 09:00 Monday, Tuesday, … Friday, then 09:20."""
    day, round_ = number % 5, number // 5
    return WEEK_START + timedelta(days=day, minutes=20 * round_)


def _school(number: int) -> School:
    return samples.sample_school(id=f"nor-bench-{number:03d}", name=f"Benkemark skole {number}")


def message_events(plan: Plan, group: int) -> list[MessagePosted]:
    """The week's `items` messages to the guardians of `group`, every guardian distinct (id, name, address).

    The recipients are built (and validated) once per group and shared by its messages: building them is the
    Kafka decoder's work in the service, not the intake's, and takes longer than the intake itself.
    """
    school_index, first_in_school = divmod(group * plan.per_message, plan.per_school)
    group_in_school = first_in_school // plan.per_message
    group_name = GROUP_NAMES[group_in_school] if group_in_school < len(GROUP_NAMES) else f"Gruppe {group_in_school}"
    school = _school(school_index)
    first = group * plan.per_message + 1
    recipients = tuple(
        samples.sample_guardian(n, channels=[Channel.EMAIL], delivery_mode=DeliveryMode.WEEKLY)
        for n in range(first, first + plan.per_message)
    )
    events = []
    for number in range(plan.items):
        author, subject, body = MESSAGES[number % len(MESSAGES)]
        if number >= len(MESSAGES):
            subject = f"{subject} ({number // len(MESSAGES) + 1})"
        at = posted_at(number)
        events.append(
            MessagePosted(
                id=samples.new_id(),
                source=samples.SOURCE,
                time=at,
                data=PostedMessage(
                    school=school,
                    message_id=f"msg-bench-{group:04d}-{number:03d}",
                    class_id=f"grp-{group:04d}",
                    class_name=group_name,
                    author_name=author,
                    subject=subject,
                    body=body,
                    posted_at=at,
                    recipients=recipients,
                ),
            )
        )
    return events


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
    from notify_shared.delivery import assembly  # noqa: PLC0415
    from notify_shared.ledger import DeliveryLedger  # noqa: PLC0415

    timings = Timings()
    timings.wrap_async(DigestStore, "waiting_schools", "store.waiting_schools")
    timings.wrap_async(DigestStore, "assign", "store.assign (per school)")
    timings.wrap_async(DigestStore, "claim_digests", "store.claim_digests (per batch)")
    timings.wrap_async(DigestStore, "items_of", "store.items_of")
    timings.wrap_async(DeliveryLedger, "begin_many", "ledger.begin (claim)")
    timings.wrap_sync(runner, "build_sections", "build_sections")
    timings.wrap_sync(assembly, "render_notification", "render_notification")
    timings.wrap_async(SmtpEmailChannel, "send_email", "smtp send_email (MIME + SMTP)")
    timings.wrap_async(DeliveryLedger, "record", "ledger.record")
    timings.wrap_async(DigestStore, "settle_digest", "store.settle_digest")
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


def service_settings(plan: Plan, *, smtp_port: int | None = None) -> DigestSettings:
    """The service's settings for this run: defaults, except the database, the SMTP server and the batch size."""
    work_dir = Path(plan.work_dir)
    fields: dict[str, Any] = {
        "database_url": plan.database_url,
        "outbox_dir": work_dir / "outbox",
        "instance_id": "bench-replica",
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


async def child_digest(plan: Plan, *, smtp_port: int, time_limit: float, profile: bool) -> dict[str, Any]:
    baseline = _import_the_service()
    timings = instrument_the_service()
    sink = CountingStatusSink()
    clock = SettableClock(WEEKLY_SLOT)  # the moment the weekly slot passes; the run itself takes real time
    runtime = Runtime()
    opening = time.perf_counter()
    await runtime.open(service_settings(plan, smtp_port=smtp_port), status_sink=sink, clock=clock)
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
    args = parser.parse_args(argv)
    from notify_shared.logs import configure_logging  # noqa: PLC0415 - as the service does at start

    configure_logging()
    plan = Plan.load(args.plan)
    if args.phase == "fill":
        result = asyncio.run(child_fill(plan))
    else:
        result = asyncio.run(
            child_digest(plan, smtp_port=args.smtp_port, time_limit=args.time_limit, profile=args.profile)
        )
    args.out.write_text(json.dumps(result))


# -------------------------------------------------------------------------------------------------- parent


@dataclass
class CountingSmtpHandler:
    """An aiosmtpd handler that accepts every message and keeps counts, not messages (the first one excepted)."""

    accepted: int = 0
    total_bytes: int = 0
    max_bytes: int = 0
    recipients: dict[str, int] = field(default_factory=dict)
    first_message: bytes = b""
    first_at: float | None = None
    last_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        content: bytes = envelope.original_content or envelope.content
        with self.lock:
            self.accepted += 1
            self.total_bytes += len(content)
            self.max_bytes = max(self.max_bytes, len(content))
            for address in envelope.rcpt_tos:
                self.recipients[address] = self.recipients.get(address, 0) + 1
            if not self.first_message:
                self.first_message = content
            self.last_at = time.perf_counter()
            if self.first_at is None:
                self.first_at = self.last_at
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def counting_smtp_sink() -> Iterator[tuple[int, CountingSmtpHandler]]:
    """A real SMTP server on loopback (aiosmtpd, as `notify_shared.testing.sinks.smtp_sink`) in a thread of this
    process, which is not the service's process."""
    from aiosmtpd.controller import Controller  # noqa: PLC0415 - parent only

    handler = CountingSmtpHandler()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


def delivery_check(plan: Plan, handler: CountingSmtpHandler) -> dict[str, Any]:
    """Exactly one digest per guardian, to the right addresses; and the first one lists every message."""
    expected = {f"guardian{n}@example.no" for n in range(1, plan.guardians + 1)}
    received = set(handler.recipients)
    check: dict[str, Any] = {
        "emails_accepted": handler.accepted,
        "distinct_recipients": len(received),
        "recipients_with_more_than_one": sum(1 for count in handler.recipients.values() if count > 1),
        "missing_recipients": len(expected - received),
        "unexpected_recipients": len(received - expected),
        "mean_email_bytes": handler.total_bytes / handler.accepted if handler.accepted else 0,
        "max_email_bytes": handler.max_bytes,
        "sink_first_to_last_seconds": (
            handler.last_at - handler.first_at if handler.first_at and handler.last_at else None
        ),
    }
    check["one_per_guardian"] = (
        handler.accepted == plan.guardians and not check["missing_recipients"] and not check["unexpected_recipients"]
    )
    if handler.first_message:
        message = message_from_bytes(handler.first_message, policy=policy.default)
        assert isinstance(message, EmailMessage)
        plain = message.get_body(("plain",))
        text = str(plain.get_content()) if plain is not None else ""
        subjects = {MESSAGES[number % len(MESSAGES)][1] for number in range(plan.items)}
        check["first_email"] = {
            "subject": str(message["Subject"]),
            "lists_every_message": all(subject in text for subject in subjects),
        }
    return check


async def spawn(phase: str, plan_path: Path, work_dir: Path, *extra: str) -> dict[str, Any]:
    """Run one phase in a fresh interpreter; its log goes to a file in the work dir."""
    out = work_dir / f"{phase}-{time.monotonic_ns()}.json"
    log = out.with_suffix(".log")
    spawned = time.perf_counter()
    with log.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--child",
            phase,
            "--plan",
            str(plan_path),
            "--out",
            str(out),
            *extra,
            stdout=log_file,
            stderr=log_file,
        )
        try:
            code = await asyncio.wait_for(process.wait(), CHILD_TIMEOUT_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RuntimeError(f"phase {phase} did not finish within {CHILD_TIMEOUT_SECONDS:.0f} s") from None
    if code != 0 or not out.exists():
        tail = log.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"phase {phase} failed (exit {code}); end of its log:\n{tail}")
    result: dict[str, Any] = json.loads(out.read_text())
    result["process_seconds"] = time.perf_counter() - spawned
    result["log"] = log_summary(log.read_text(errors="replace").splitlines())
    return result


def log_summary(lines: Sequence[str]) -> dict[str, Any]:
    """How much the phase logged, and its warnings and errors (ids only, never personal data, by design)."""
    levels: dict[str, int] = {}
    problems: dict[str, int] = {}
    for line in lines:
        parts = line.split(" ", 4)
        if len(parts) < 5 or parts[2] not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            continue
        levels[parts[2]] = levels.get(parts[2], 0) + 1
        if parts[2] in ("WARNING", "ERROR", "CRITICAL"):
            # Group by logger and the message up to its first digit, so ids and times do not split groups.
            text = f"{parts[2]} {parts[3]} {parts[4]}"
            head = next((text[:index] for index, char in enumerate(text) if char.isdigit()), text)[:160]
            problems[head] = problems.get(head, 0) + 1
    return {"lines": len(lines), "by_level": levels, "warnings_and_errors": problems}


def sqlite_size_mib(work_dir: Path) -> float:
    """The SQLite file and its WAL."""
    return sum(path.stat().st_size for path in work_dir.glob("digest.db*") if path.is_file()) / (1024 * 1024)


@asynccontextmanager
async def database(url: str | None, work_dir: Path) -> AsyncIterator[str]:
    if url is None:
        yield f"sqlite+aiosqlite:///{work_dir / 'digest.db'}"
        return
    from notify_shared.testing.databases import fresh_postgres_database  # noqa: PLC0415 - only for PostgreSQL

    async with fresh_postgres_database(url, prefix="notify_bench") as fresh:
        yield fresh


async def run_benchmark(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "started_at": datetime.now(UTC).isoformat()}
    async with database(args.database_url, work_dir) as url:
        plan = Plan(
            guardians=args.guardians,
            items=args.items,
            per_message=args.per_message,
            per_school=args.per_school,
            batch_size=args.batch_size,
            database_url=url,
            work_dir=str(work_dir),
        )
        plan_path = work_dir / "plan.json"
        plan.save(plan_path)
        results["plan"] = {key: value for key, value in asdict(plan).items() if key not in ("database_url", "work_dir")}
        results["plan"] |= {
            "database": "postgresql" if url.startswith("postgresql") else "sqlite",
            "schools": plan.schools,
            "events": plan.events,
            "weekly_slot": WEEKLY_SLOT.isoformat(),
            "time_limit_seconds": args.time_limit,
        }
        say(f"fill: {plan.events:,} message.posted events → {plan.guardians * plan.items:,} digest items …")
        results["fill"] = await spawn("fill", plan_path, work_dir)
        if url.startswith("sqlite"):
            results["fill"]["database_mib"] = sqlite_size_mib(work_dir)
        limit = f", stopping after {args.time_limit:.0f} s" if args.time_limit else ""
        say(f"digest: run_due at {WEEKLY_SLOT.isoformat()} for {plan.guardians:,} guardians{limit} …")
        cpu_before = cpu_seconds()
        with counting_smtp_sink() as (port, handler):
            extra = ["--smtp-port", str(port), "--time-limit", str(args.time_limit)]
            digest = await spawn("digest", plan_path, work_dir, *extra, *(["--profile"] if args.profile else []))
        digest["sink_process_cpu_seconds"] = cpu_seconds() - cpu_before
        digest["delivery"] = delivery_check(plan, handler)
        results["digest"] = digest
    results["finished_at"] = datetime.now(UTC).isoformat()
    return results


def say(text: str) -> None:
    print(f"[digest-bench] {text}", file=sys.stderr, flush=True)


def print_summary(results: dict[str, Any]) -> None:
    from rich.console import Console  # noqa: PLC0415 - parent only
    from rich.table import Table  # noqa: PLC0415

    plan, fill, digest = results["plan"], results["fill"], results["digest"]
    title = (
        f"digest benchmark — {plan['guardians']:,} guardians × {plan['items']} items, batch {plan['batch_size']}, "
        f"{plan['database']}, {results['machine']['cpus']} CPUs"
    )
    table = Table(title=title)
    table.add_column("phase")
    table.add_column("figure")
    table.add_column("value", justify="right")
    items = fill["states"]["items_waiting"]
    table.add_row("fill", "message.posted events → digest items", f"{fill['events']:,} → {items:,}")
    table.add_row("", "time · throughput", f"{fill['seconds']:.1f} s · {fill['items_per_second']:,.0f} items/s")
    per_event = fill["per_event_ms"]
    table.add_row(
        "",
        f"per event ({plan['per_message']} guardians) p50 / p99",
        f"{per_event['p50']:.0f} / {per_event['p99']:.0f} ms",
    )
    if "database_mib" in fill:
        table.add_row("", "SQLite file (with WAL)", f"{fill['database_mib']:,.0f} MiB")
    table.add_row("", "peak RSS", f"{fill['peak_rss_mib']:.0f} MiB")
    statuses = digest["statuses"]
    sent = statuses.get("sent", 0)
    delivery = digest["delivery"]
    verdict = "complete" if digest["complete"] else f"stopped after {plan['time_limit_seconds']:.0f} s"
    table.add_row("digest", "run_due", verdict)
    table.add_row(
        "", "digests sent / guardians", f"{sent:,} / {plan['guardians']:,} {statuses if len(statuses) > 1 else ''}"
    )
    table.add_row(
        "",
        "emails accepted by the SMTP sink · one per guardian",
        f"{delivery['emails_accepted']:,} · {'yes' if delivery['one_per_guardian'] else 'NO'}",
    )
    table.add_row("", "total time · digests/s", f"{digest['seconds']:.1f} s · {digest['digests_per_second']:.1f}/s")
    assign = digest["steps"].get("store.assign (per school)", {})
    if assign:
        table.add_row("", f"of which assign ({assign['calls']} schools)", f"{assign['total_seconds']:.1f} s")
    table.add_row(
        "", "service CPU · sink CPU", f"{digest['cpu_seconds']:.0f} s · {digest['sink_process_cpu_seconds']:.0f} s"
    )
    table.add_row(
        "",
        "RSS after import → after open (baseline)",
        f"{digest['rss_after_import_mib']:.0f} → {digest['rss_after_open_mib']:.0f} MiB",
    )
    milestones = digest["rss_at_milestones"]
    if milestones:
        table.add_row(
            "",
            "peak RSS so far when " + " / ".join(milestones) + " sent",
            " / ".join(f"{value['peak_rss_so_far_mib']:.0f}" for value in milestones.values()) + " MiB",
        )
    table.add_row("", "RSS sampled every 0.5 s: highest", f"{digest['max_sampled_rss_mib']:.0f} MiB")
    table.add_row("", "[bold]peak RSS[/bold]", f"[bold]{digest['peak_rss_mib']:.0f} MiB[/bold]")
    # Calls × mean time per call: loop time for the synchronous steps (rendering, sections), latency (own work plus
    # waiting for a connection, the SQLite write lock or the SMTP server) for the others.
    for label, figures in digest["steps"].items():
        if figures["calls"]:
            table.add_row(
                "steps" if label == next(iter(digest["steps"])) else "",
                label,
                f"{figures['calls']:,} × {figures['mean_ms']:.2f} ms = {figures['total_seconds']:.1f} s",
            )
    if digest.get("profile"):
        for number, (area, seconds) in enumerate(digest["profile"]["by_area_seconds"].items()):
            table.add_row("profile" if number == 0 else "", area, f"{seconds:.1f} s")
    Console(width=120).print(table)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        run_child(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guardians", type=int, default=100_000, help="guardians, one digest each (default 100000)")
    parser.add_argument("--items", type=int, default=5, help="messages per guardian in the week (5)")
    parser.add_argument("--batch-size", type=int, default=200, help="DIGEST_BATCH_SIZE for the run (200, the default)")
    parser.add_argument("--per-message", type=int, default=500, help="guardians each message is addressed to (500)")
    parser.add_argument("--per-school", type=int, default=1000, help="guardians per school (1000)")
    parser.add_argument("--database-url", help="a PostgreSQL server (postgresql+asyncpg://…); default: a SQLite file")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=540.0,
        help="stop the digest run after this many seconds (540, so the default run takes about 11 minutes on 2 "
        "cores; 0: run to the end, about 31 minutes for 100,000 guardians there)",
    )
    parser.add_argument("--profile", action="store_true", help="run the digest phase under cProfile (slows it down)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir: SQLite file, logs, outbox")
    parser.add_argument("--json", type=Path, help="where to write all figures (default: a file in the temp folder)")
    args = parser.parse_args(argv)
    if args.guardians % args.per_message or args.per_school % args.per_message:
        parser.error("--guardians and --per-school must be multiples of --per-message")
    if not 1 <= args.batch_size <= 10_000 or not 1 <= args.items <= MAX_ITEMS:
        parser.error(f"--batch-size must be 1 to 10000 (as DIGEST_BATCH_SIZE) and --items 1 to {MAX_ITEMS}")
    if args.keep:
        work = Path(tempfile.mkdtemp(prefix="digest-bench-"))
        say(f"work dir (kept): {work}")
        results = asyncio.run(run_benchmark(args, work))
    else:
        with tempfile.TemporaryDirectory(prefix="digest-bench-") as temporary:
            results = asyncio.run(run_benchmark(args, Path(temporary)))
    results["command"] = " ".join(["uv run python bench/digest_bench.py", *argv])
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.json or Path(tempfile.gettempdir()) / f"digest-bench-{stamp}.json"
    out.write_text(json.dumps(results, indent=2))
    print_summary(results)
    say(f"all figures: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
