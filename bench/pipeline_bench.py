"""Benchmark of the whole pipeline (issue 8): meeting.created events on Kafka → emails and SMS accepted by sinks.

    uv run python bench/pipeline_bench.py                             # N = 1,000 events (10,000 notifications)
    uv run python bench/pipeline_bench.py --sizes 1000,10000,100000   # how the cost grows with N
    uv run python bench/pipeline_bench.py --help                      # every option

Everything runs on this machine, each part in a process of its own, and the script starts and stops all of it:
a Kafka broker of its own (deploy/kafka/local-kafka, own state dir and free ports), the delivery sinks
(bench/pipeline_sinks.py: SMTP and an SMS webhook, recording the acceptance time and key of every message), the
invitations service exactly as deployed (`faststream run notify_invitations.app:create_app --factory`, default
settings apart from the endpoints and the database), and the reference probes (bench/pipeline_probes.py).

For each N:
1. publish: N meeting.created events (the sample meeting one week ahead, `--guardians` guardians each wanting
   email and SMS, so 2 × guardians notifications per event), CloudEvents `time` = the moment of publishing.
2. kafka ceiling: a plain aiokafka consumer reads the same N events doing no work.
3. drain: the sinks and then the service start, with the N events already waiting on the topic; measured until
   the sinks have accepted every notification: notifications/s (first to last acceptance), and CPU seconds and
   peak RSS (VmHWM) of the service, the sinks and the broker, from /proc, read just before each is stopped.
Once per run:
4. paced: a fresh service gets events at a fixed rate (`--paced-rate`, default half the best drain rate) for
   `--paced-seconds`; latency = sink acceptance time − the event's CloudEvents `time`, p50 / p95 / p99.
5. sink ceilings: each sink blasted directly (SMTP over a pool of persistent aiosmtplib sessions, SMS by
   concurrent httpx keep-alive requests), and the naive peer (smtplib, a new connection per email).
Then the ratios pipeline / lower ceiling and pipeline / naive, against the issue's targets.

`--replicas 2 --database-url postgresql+asyncpg://…` runs the drain with two instances in one consumer group on
topics of `--partitions` (6) partitions and shows how they divided the work (per-instance counts from each
instance's /metrics, duplicates counted by key at the sinks). `--profile py-spy` samples the service during the
drain with py-spy (run the script with `uv run --with py-spy …`) and prints where its CPU time went.

All figures go to `--json` (default /tmp/pipeline-bench-<UTC time>.json). Every wait is bounded; every child
process is stopped at the end, on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from machine_info import machine  # bench/, on the path when a script here runs
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from notify_shared import samples
from notify_shared.contract import ALL_EVENT_TYPES, Channel, MeetingCreated, encode_structured, partition_key
from notify_shared.ledger import DeliveryKey, create_engine, deliveries
from notify_shared.ledger.keys import notification_id_for
from notify_shared.testing.faults import OwnKafkaBroker, free_port
from notify_shared.testing.kafka import create_topics
from notify_shared.topics import MEETING_CREATED, Topics

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
TEMPLATE = "meeting_invitation"
SERVICE_APP = "notify_invitations.app:create_app"
CHANNELS = (Channel.EMAIL, Channel.SMS)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The shell's own settings must not change what is measured: these are dropped from the service's environment.
SETTING_PREFIXES = (
    "KAFKA_",
    "SMTP_",
    "SMS_",
    "DELIVERY_",
    "INVITATIONS_",
    "EMAIL_",
    "TWILIO_",
    "OTEL_",
    "HTTP_",
    "DATABASE_URL",
    "TOPIC_PREFIX",
    "OUTBOX_DIR",
    "LOG_LEVEL",
)

console = Console(stderr=True)


def say(text: str) -> None:
    console.print(f"[bold cyan][pipeline-bench][/] {text}", highlight=False)


# ------------------------------------------------------------------------------------------- processes, /proc


@dataclass
class ProcFigures:
    """One process as /proc shows it: CPU time so far, resident set now and at its peak (VmHWM)."""

    cpu_seconds: float
    rss_mib: float
    peak_rss_mib: float


def read_proc(pid: int) -> ProcFigures | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": fields 3… of proc(5)
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
    memory = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("Vm")}
    return ProcFigures(cpu, memory.get("VmRSS", math.nan), memory.get("VmHWM", math.nan))


def calibration_ms() -> float:
    """CPU milliseconds a fixed pure-Python loop takes here and now, best of three. The VM's CPUs are shared with
    other machines: when this figure is higher, every process's CPU per notification is higher too."""
    best = math.inf
    for _ in range(3):
        started = time.process_time()
        sum(number * number for number in range(1_000_000))
        best = min(best, time.process_time() - started)
    return best * 1000


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of a process's main thread (the event loop) and of all its other threads together (for the
    service on SQLite: mostly aiosqlite's worker threads, which run every SQL statement and commit)."""
    main = others = 0.0
    threads = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            stat = (task / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            threads += 1
            if task.name == str(pid):
                main = cpu
            else:
                others += cpu
    return {"main_thread_cpu_seconds": main, "other_threads_cpu_seconds": others, "threads": threads}


def own_figures() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024}


class Children:
    """Every process this script starts, so that all of them are stopped whatever happens."""

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen[bytes]] = []

    def spawn(self, command: Sequence[str], *, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            # A session of its own: Ctrl-C reaches this script only, which then stops each child in order.
            process = subprocess.Popen(  # noqa: S603 - the project's own programs, fixed arguments
                list(command), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=REPO
            )
        self._processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], *, timeout: float = 60.0) -> int:
        """SIGTERM, then SIGKILL after `timeout` seconds; returns the exit code."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        with contextlib.suppress(ValueError):
            self._processes.remove(process)
        return process.returncode

    def stop_all(self) -> None:
        for process in reversed(list(self._processes)):
            with contextlib.suppress(Exception):
                self.stop(process, timeout=20)


def python_tool(name: str) -> str:
    """A console script of this environment (faststream, py-spy), else from PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found; for py-spy run the script with `uv run --with py-spy python …`")
    return found


def log_summary(text: str) -> dict[str, Any]:
    """How much a process logged, and its warnings and errors grouped by message up to the first digit."""
    levels: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    for line in text.splitlines():
        parts = line.split(" ", 4)
        if len(parts) < 5 or parts[2] not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            continue
        levels[parts[2]] += 1
        if parts[2] in ("WARNING", "ERROR", "CRITICAL"):
            message = f"{parts[2]} {parts[3]} {parts[4]}"
            head = next((message[:index] for index, char in enumerate(message) if char.isdigit()), message)[:160]
            problems[head] += 1
    return {
        "lines": len(text.splitlines()),
        "by_level": dict(levels),
        "warnings_and_errors": dict(problems.most_common(10)),
        "tracebacks": text.count("Traceback"),
    }


# ------------------------------------------------------------------------------------------------ the parts


class Broker:
    """deploy/kafka/local-kafka with a state dir and ports of its own."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._own = OwnKafkaBroker(state_dir, REPO)
        self.bootstrap = ""

    async def start(self) -> str:
        self.bootstrap = await asyncio.to_thread(self._own.start)
        return self.bootstrap

    async def stop(self) -> None:
        await asyncio.to_thread(self._own.stop)

    def proc(self) -> ProcFigures | None:
        pid_file = self.state_dir / "kafka.pid"
        return read_proc(int(pid_file.read_text())) if pid_file.exists() else None


class Sinks:
    """bench/pipeline_sinks.py in a child process: SMTP and SMS sinks with a small control API."""

    def __init__(self, children: Children, work_dir: Path, name: str, reply_delay: float = 0.0) -> None:
        self._children = children
        self._work_dir = work_dir
        self.name = name
        self._reply_delay = reply_delay
        self.process: subprocess.Popen[bytes] | None = None
        self.smtp_port = 0
        self.http_port = 0
        self._client = httpx.AsyncClient(timeout=30.0)

    @property
    def sms_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/sms"

    async def start(self) -> None:
        ready = self._work_dir / f"{self.name}.ready.json"
        ready.unlink(missing_ok=True)
        self.process = self._children.spawn(
            [
                sys.executable,
                str(BENCH / "pipeline_sinks.py"),
                "--ready-file",
                str(ready),
                "--reply-delay",
                str(self._reply_delay),
            ],
            log=self._work_dir / f"{self.name}.log",
        )
        deadline = time.monotonic() + 30
        while not ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the sinks did not start; see {self._work_dir / f'{self.name}.log'}")
            await asyncio.sleep(0.05)
        info = json.loads(ready.read_text())
        self.smtp_port, self.http_port = info["smtp_port"], info["http_port"]

    async def stats(self) -> dict[str, Any]:
        response = await self._client.get(f"http://127.0.0.1:{self.http_port}/_stats")
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

    async def accepted(self) -> int:
        stats = await self.stats()
        return int(stats["smtp"]) + int(stats["sms"])

    async def records(self) -> list[tuple[str, str, float]]:
        """Every acceptance as (channel, key, unix time)."""
        path = self._work_dir / f"{self.name}.records.tsv"
        response = await self._client.post(f"http://127.0.0.1:{self.http_port}/_dump", content=str(path).encode())
        response.raise_for_status()
        records = []
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                channel, key, at = line.rstrip("\n").split("\t")
                records.append((channel, key, float(at)))
        path.unlink()
        return records

    def proc(self) -> ProcFigures | None:
        return read_proc(self.process.pid) if self.process else None

    async def stop(self) -> dict[str, Any]:
        figures = self.proc()
        if self.process is not None:
            self._children.stop(self.process, timeout=10)
        await self._client.aclose()
        return asdict(figures) if figures else {}


@dataclass
class Deployment:
    """Where one run of the service reads and writes: broker, topics, group, database, sinks."""

    bootstrap: str
    topics: Topics
    group: str
    database_url: str
    sinks: Sinks
    work_dir: Path
    overrides: Mapping[str, str] = field(default_factory=dict)
    """Service settings given with --set, on top of the defaults."""


class ServiceInstance:
    """One invitations service process, as deployed: `faststream run … --factory` with its environment."""

    def __init__(self, children: Children, deployment: Deployment, name: str) -> None:
        self._children = children
        self.name = name
        self.http_port = free_port()
        self.admin_port = free_port()
        self.log_path = deployment.work_dir / f"{name}.log"
        inherited = {key: value for key, value in os.environ.items() if not key.upper().startswith(SETTING_PREFIXES)}
        self.settings = {
            "KAFKA_BOOTSTRAP_SERVERS": deployment.bootstrap,
            "TOPIC_PREFIX": deployment.topics.prefix,
            "INVITATIONS_CONSUMER_GROUP": deployment.group,
            # Runs at any hour: SMS held for the end of quiet hours would count as missing.
            "INVITATIONS_QUIET_HOURS": "off",
            "DATABASE_URL": deployment.database_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(deployment.sinks.smtp_port),
            "SMTP_SECURITY": "none",
            "SMS_PROVIDER": "webhook",
            "SMS_WEBHOOK_URL": deployment.sinks.sms_url,
            "OUTBOX_DIR": str(deployment.work_dir / "outbox"),
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.http_port),
            "ADMIN_PORT": str(self.admin_port),
            "LOG_LEVEL": "INFO",
        } | dict(deployment.overrides)
        self._env = inherited | self.settings
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_figures: ProcFigures | None = None
        self._client = httpx.AsyncClient(timeout=10.0)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        command = [python_tool("faststream"), "run", SERVICE_APP, "--factory"]
        self.process = self._children.spawn(command, log=self.log_path, env=self._env)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    async def wait_ready(self, within: float = 120.0) -> float:
        """Seconds from now until /readyz answers 200 (Kafka and the database reachable)."""
        started = time.monotonic()
        while time.monotonic() - started < within:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited during start-up:\n{self.log_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                response = await self._client.get(f"http://127.0.0.1:{self.admin_port}/readyz")
                if response.status_code == 200:
                    self.ready_figures = read_proc(self.pid)
                    return time.monotonic() - started
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.name} was not ready within {within:.0f} s:\n{self.log_text()[-3000:]}")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def metrics(self) -> dict[str, Any]:
        """notify_notifications_total by channel and status, and the service's own latency histogram."""
        try:
            response = await self._client.get(f"http://127.0.0.1:{self.admin_port}/metrics")
            response.raise_for_status()
        except httpx.HTTPError as error:
            return {"error": str(error)}
        notifications: Counter[str] = Counter()
        latency: dict[str, float] = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == "notify_notifications_total":
                    notifications[f"{sample.labels['channel']}:{sample.labels['status']}"] += int(sample.value)
                elif sample.name in ("notify_delivery_latency_seconds_sum", "notify_delivery_latency_seconds_count"):
                    key = sample.name.rsplit("_", 1)[1]
                    latency[key] = latency.get(key, 0.0) + sample.value
        sent = sum(count for key, count in notifications.items() if key.endswith(":sent"))
        return {
            "notifications_total": dict(notifications),
            "sent": sent,
            "mean_latency_seconds": latency.get("sum", 0.0) / latency["count"] if latency.get("count") else None,
        }

    async def stop(self) -> dict[str, Any]:
        """Read /proc, then SIGTERM (a graceful stop, as an orchestrator does) and wait for the exit."""
        end = read_proc(self.pid) if self.process else None
        threads = thread_cpu(self.pid) if self.process else {}
        if end is not None and threads:
            # The process total includes threads that have exited (aiosqlite starts one per connection).
            threads["other_threads_cpu_seconds"] = end.cpu_seconds - threads["main_thread_cpu_seconds"]
        code = self._children.stop(self.process, timeout=60) if self.process else None
        await self._client.aclose()
        log = self.log_text()
        figures: dict[str, Any] = {
            "exit_code": code,
            "shut_down_gracefully": "FastStream app shut down gracefully" in log,
            "log": log_summary(log),
            "threads": threads,
        }
        if end is not None:
            startup_cpu = self.ready_figures.cpu_seconds if self.ready_figures else 0.0
            figures |= {
                "cpu_seconds": end.cpu_seconds,
                "cpu_seconds_until_ready": startup_cpu,
                "cpu_seconds_after_ready": end.cpu_seconds - startup_cpu,
                "rss_when_ready_mib": self.ready_figures.rss_mib if self.ready_figures else None,
                "rss_at_end_mib": end.rss_mib,
                "peak_rss_mib": end.peak_rss_mib,
            }
        return figures


class Profiler:
    """py-spy attached to a running service: samples until the service exits, then writes collapsed stacks."""

    def __init__(self, children: Children, work_dir: Path, rate: int) -> None:
        self._children = children
        self.output = work_dir / "service.pyspy.txt"
        self._log = work_dir / "py-spy.log"
        self._rate = rate
        self._process: subprocess.Popen[bytes] | None = None

    def attach(self, pid: int) -> None:
        command = [
            python_tool("py-spy"),
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(self._rate),
            "--format",
            "raw",
            "--nolineno",
            "--nonblocking",  # sample without pausing the service, so it runs at (almost) full speed
            "--output",
            str(self.output),
        ]
        self._process = self._children.spawn(command, log=self._log)

    async def finish(self, within: float = 120.0) -> dict[str, Any]:
        """After the service stopped: wait for py-spy to write its file and summarise it."""
        if self._process is None:
            return {}
        try:
            await asyncio.to_thread(self._process.wait, within)
        except subprocess.TimeoutExpired:
            self._process.send_signal(signal.SIGINT)  # py-spy writes what it has on Ctrl-C
            await asyncio.sleep(5)
        self._children.stop(self._process, timeout=10)
        if not self.output.exists():
            log = self._log.read_text(errors="replace") if self._log.exists() else ""
            return {"error": f"py-spy wrote nothing: {log[-1000:]}"}
        return summarise_profile(self.output.read_text(encoding="utf-8", errors="replace")) | {
            "file": str(self.output),
            "rate_hz": self._rate,
        }


# ------------------------------------------------------------------------------------------------- profile

_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*)\)$")


def component_of(path: str) -> str:
    """The package a frame's file belongs to (py-spy names files relative to sys.path: `httpx/_client.py`)."""
    parts = path.split("/")
    top = parts[0].removesuffix(".py")
    if top in ("notify_shared", "notify_invitations") and len(parts) > 1:
        return f"{top}.{parts[1].removesuffix('.py')}"
    if top in sys.stdlib_module_names:
        return f"stdlib:{top}"
    return top or "?"


def short_frame(function: str, path: str) -> str:
    return f"{path}:{function}"


IDLE_FRAMES = ("selectors.py:EpollSelector.select",)
"""Leaf frames where the event loop waits for I/O: py-spy's `--nonblocking` sampling counts some of it as active."""


def summarise_profile(raw: str, top: int = 20) -> dict[str, Any]:
    """Where the service's main thread (the event loop, where all Python code but SQLite's runs) spent its busy
    samples — own time by component and by frame, inclusive time by function — from py-spy's collapsed stacks
    (`frame;frame;… count` per line), and how the samples split between threads.

    Other threads' samples (aiosqlite's workers) are counted but not broken down: they sit in SQLite's C code,
    which py-spy shows as one frame, and include time waiting for the disk; /proc gives their CPU time.
    """
    own: Counter[str] = Counter()
    own_by_component: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [(match["function"], match["path"]) for frame in stack.split(";") if (match := _FRAME.match(frame))]
        if not frames:
            continue
        leaf = short_frame(*frames[-1])
        if frames[0][0] != "<module>":
            threads["other threads"] += count
            continue
        if leaf in IDLE_FRAMES:
            threads["main thread, waiting in epoll"] += count
            continue
        threads["main thread, busy"] += count
        own[leaf] += count
        own_by_component[component_of(frames[-1][1])] += count
        for name in {short_frame(function, path) for function, path in frames}:
            inclusive[name] += count
    busy = threads["main thread, busy"]

    def shares(counter: Counter[str], limit: int) -> list[dict[str, Any]]:
        return [{"name": name, "samples": n, "share": n / max(busy, 1)} for name, n in counter.most_common(limit)]

    # Inclusive figures are most telling for our code and the libraries it calls, not for the frames that only
    # start the process, run the event loop or wrap the handler (every busy sample passes through those).
    plumbing = ("typer/", "click/", "faststream/", "fast_depends/", "anyio/_core/_eventloop", "anyio/_backends/")
    interesting = Counter(
        {
            name: count
            for name, count in inclusive.items()
            if not name.startswith(("asyncio/", "threading.py", "runpy.py", *plumbing)) and ":<module>" not in name
        }
    )
    return {
        "samples": sum(threads.values()),
        "samples_by_thread": dict(threads),
        "shares_are_of": "the main thread's busy samples",
        "own_by_component": shares(own_by_component, top),
        "own_by_frame": shares(own, top),
        "inclusive_by_frame": shares(interesting, 40),
    }


# --------------------------------------------------------------------------------------------------- events


@dataclass
class Published:
    """What was published: the event ids and their CloudEvents `time` (unix seconds), in order."""

    event_ids: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    guardians: int = 0

    def guardian_ids(self, index: int) -> list[str]:
        return [f"g-{self.event_ids[index][:8]}-{number}" for number in range(self.guardians)]

    def expected(self) -> dict[str, float]:
        """Notification id → its event's time, for every notification the events ask for."""
        return {
            notification_id_for(
                DeliveryKey(samples.sample_school().id, samples.SOURCE, event_id, guardian, channel.value, TEMPLATE)
            ): at
            for index, (event_id, at) in enumerate(zip(self.event_ids, self.times, strict=True))
            for guardian in self.guardian_ids(index)
            for channel in CHANNELS
        }

    @property
    def notifications(self) -> int:
        return len(self.event_ids) * self.guardians * len(CHANNELS)


def build_event(event_id: str, index: int, guardians: int, now: datetime) -> MeetingCreated:
    """The sample meeting one week ahead; guardians with their own ids, addresses and numbers, email and SMS."""
    recipients = [
        samples.sample_guardian(
            index * guardians + number + 1, guardian_id=f"g-{event_id[:8]}-{number}", channels=list(CHANNELS)
        )
        for number in range(guardians)
    ]
    meeting = samples.upcoming_meeting(f"m-bench-{event_id[:8]}-{index}", now)
    return samples.meeting_created(event_id=event_id, meeting=meeting, recipients=recipients, time=now)


async def publish(
    bootstrap: str,
    topics: Topics,
    count: int,
    guardians: int,
    progress: Progress,
    *,
    rate: float | None = None,
    what: str = "publish",
) -> Published:
    """Publish `count` events, as fast as possible or `rate` per second; `time` is each event's publish moment."""
    published = Published(guardians=guardians)
    # Idempotent with acks=all as an admin system should; no lingering in paced mode, so `time` is the send.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=0 if rate else 5, max_batch_size=262_144
    )
    await producer.start()
    task = progress.add_task(what, total=count, rate="")
    topic = topics.for_event_type(MEETING_CREATED)
    pending: list[asyncio.Future[Any]] = []
    started = time.perf_counter()
    try:
        for index in range(count):
            if rate:
                delay = started + index / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            event_id = str(uuid.uuid4())
            now = datetime.now(UTC)
            event = build_event(event_id, index, guardians, now)
            value, headers = encode_structured(event)
            pending.append(await producer.send(topic, value, key=partition_key(event), headers=headers))
            published.event_ids.append(event_id)
            published.times.append(now.timestamp())
            published.bytes += len(value)
            if len(pending) >= (20 if rate else 1000):
                await asyncio.gather(*pending)
                pending.clear()
                elapsed = time.perf_counter() - started
                progress.update(task, completed=index + 1, rate=f"{(index + 1) / max(elapsed, 1e-9):,.0f}/s")
        await asyncio.gather(*pending)
        progress.update(task, completed=count)
    finally:
        await producer.stop()
        progress.remove_task(task)
    published.seconds = time.perf_counter() - started
    return published


# ------------------------------------------------------------------------------------------------ analysis


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted `values` (not empty)."""
    rank = max(1, math.ceil(fraction * len(values)))
    return values[min(rank, len(values)) - 1]


def distribution_ms(values: Iterable[float]) -> dict[str, float]:
    ordered = sorted(value * 1000 for value in values)
    if not ordered:
        return {}
    return {
        "count": len(ordered),
        "p50": percentile(ordered, 0.50),
        "p95": percentile(ordered, 0.95),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1],
        "mean": sum(ordered) / len(ordered),
    }


def analyse(records: list[tuple[str, str, float]], expected: dict[str, float]) -> dict[str, Any]:
    """Throughput from the sinks' records, duplicates and gaps against what was published, and latency
    (acceptance − event time, first acceptance of each notification)."""
    by_channel: dict[str, list[float]] = {channel.value: [] for channel in CHANNELS}
    keys: Counter[str] = Counter()
    first_acceptance: dict[str, tuple[str, float]] = {}
    for channel, key, at in records:
        by_channel.setdefault(channel, []).append(at)
        keys[key] += 1
        if key not in first_acceptance or at < first_acceptance[key][1]:
            first_acceptance[key] = (channel, at)
    times = sorted(at for _, _, at in records)
    figures: dict[str, Any] = {
        "accepted": len(records),
        "accepted_by_channel": {channel: len(values) for channel, values in by_channel.items()},
        "unique_keys": len(keys),
        "duplicates": sum(count - 1 for count in keys.values() if count > 1),
        "missing": sum(1 for key in expected if key not in keys),
        "unexpected": sum(1 for key in keys if key not in expected),
    }
    if len(times) >= 2:
        window = times[-1] - times[0]
        figures |= {
            "first_to_last_seconds": window,
            "notifications_per_second": len(records) / max(window, 1e-9),
            "per_channel_per_second": {
                channel: len(values) / max(window, 1e-9) for channel, values in by_channel.items()
            },
            "first_acceptance": times[0],
            "last_acceptance": times[-1],
        }
    latencies: dict[str, list[float]] = {channel.value: [] for channel in CHANNELS}
    for key, (channel, at) in first_acceptance.items():
        if key in expected:
            latencies.setdefault(channel, []).append(at - expected[key])
    figures["latency_ms"] = {
        "all": distribution_ms(value for values in latencies.values() for value in values),
        **{channel: distribution_ms(values) for channel, values in latencies.items()},
    }
    return figures


async def ledger_summary(database_url: str) -> dict[str, int]:
    """Rows of the delivery ledger by channel and status, read after the service stopped."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                sa.select(deliveries.c.channel, deliveries.c.status, sa.func.count()).group_by(
                    deliveries.c.channel, deliveries.c.status
                )
            )
            return {f"{row[0]}:{row[1]}": int(row[2]) for row in rows}
    finally:
        await engine.dispose()


# ------------------------------------------------------------------------------------------------- waiting


@contextmanager
def progress_bars() -> Iterator[Progress]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        yield progress


async def wait_for_deliveries(
    sinks: Sinks,
    services: Sequence[ServiceInstance],
    expected: int,
    progress: Progress,
    *,
    what: str,
    within: float,
    stall: float,
) -> dict[str, Any]:
    """Poll the sinks until `expected` notifications are in, nothing came for `stall` s, or `within` s passed."""
    task: TaskID = progress.add_task(what, total=expected, rate="")
    started = time.monotonic()
    last_change = started
    accepted = 0
    outcome = "complete"
    rate_window: list[tuple[float, int]] = []
    # Other work on the machine shows here: the 1-minute load average, sampled every few seconds.
    loads: list[float] = []
    try:
        while True:
            now = time.monotonic()
            if len(loads) <= (now - started) / 5:
                loads.append(os.getloadavg()[0])
            count = await sinks.accepted()
            if count != accepted:
                accepted, last_change = count, now
            rate_window = [*rate_window[-19:], (now, count)]
            rate = (rate_window[-1][1] - rate_window[0][1]) / max(rate_window[-1][0] - rate_window[0][0], 1e-9)
            progress.update(task, completed=min(accepted, expected), rate=f"{rate:,.0f}/s")
            if accepted >= expected:
                break
            if not all(service.alive for service in services):
                outcome = "a service exited"
                break
            if now - last_change > stall:
                outcome = f"stalled: nothing accepted for {stall:.0f} s"
                break
            if now - started > within:
                outcome = f"timed out after {within:.0f} s"
                break
            await asyncio.sleep(0.5)
    finally:
        progress.remove_task(task)
    return {
        "outcome": outcome,
        "accepted": accepted,
        "expected": expected,
        "waited_seconds": time.monotonic() - started,
        "load_average_during": {"mean": sum(loads) / len(loads), "max": max(loads)} if loads else {},
    }


async def group_assignment(bootstrap: str, group: str) -> dict[str, Any]:
    """The consumer group's state and each member's assigned partitions, from the broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    for response in responses:
        for described in response.groups:
            error_code, _group_id, state, _protocol_type, _protocol, members = described[:6]
            assignments: list[list[str]] = []
            for member in members:
                raw = member[-1]
                if not raw:
                    assignments.append([])
                    continue
                decoded = ConsumerProtocolMemberAssignment.decode(raw)
                assignments.append(sorted(f"{topic}[{partition}]" for topic, partition in _partitions(decoded)))
            return {"error_code": error_code, "state": state, "members": assignments}
    return {"state": "unknown", "members": []}


def _partitions(assignment: Any) -> list[tuple[str, int]]:
    return [(topic, partition) for topic, partitions in assignment.assignment for partition in partitions]


async def wait_for_group(bootstrap: str, group: str, members: int, topic: str, within: float = 90.0) -> dict[str, Any]:
    """Until the group is Stable with `members` members, each holding partitions of `topic`."""
    deadline = time.monotonic() + within
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            state = await group_assignment(bootstrap, group)
            holding = [
                [name for name in assigned if name.startswith(f"{topic}[")] for assigned in state.get("members", [])
            ]
            if state.get("state") == "Stable" and len(holding) == members and all(holding):
                # The partitions of `topic` each member holds, e.g. [[0, 2, 4], [1, 3, 5]].
                state["partitions_of_topic"] = [
                    sorted(int(name[len(topic) + 1 : -1]) for name in held) for held in holding
                ]
                return state
        await asyncio.sleep(0.5)
    raise RuntimeError(f"consumer group {group} did not settle with {members} members within {within:.0f} s: {state}")


# ------------------------------------------------------------------------------------------------ the phases


@dataclass
class Options:
    sizes: list[int]
    guardians: int
    partitions: int
    replicas: int
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
    progress: Progress,
) -> dict[str, Any]:
    """One N: publish, Kafka ceiling, then the service instance(s) draining the backlog into the sinks."""
    figures: dict[str, Any] = {
        "events": size,
        "load_average_at_start": list(os.getloadavg()),
        "calibration_ms_at_start": calibration_ms(),
    }
    topics = await fresh_topics(broker.bootstrap, options.partitions)
    topic = topics.for_event_type(MEETING_CREATED)
    group = f"bench-invitations-{uuid.uuid4().hex[:8]}"
    published = Published(guardians=options.guardians)
    if options.replicas == 1:
        # The backlog is on the topic before the service starts: what is measured is how fast it drains.
        published = await publish(broker.bootstrap, topics, size, options.guardians, progress, what=f"publish {size:,}")
        if options.ceilings:
            say(f"N={size:,}: Kafka ceiling (plain aiokafka consumer) …")
            arguments = ("kafka", "--bootstrap", broker.bootstrap, "--topic", topic, "--expected", str(size))
            figures["kafka_ceiling"] = await probe(children, work_dir, f"kafka-{size}", *arguments, within=600)
    async with database(options, work_dir, f"invitations-{size}") as url:
        sinks = Sinks(children, work_dir, f"sinks-{size}", options.provider_latency)
        await sinks.start()
        deployment = Deployment(broker.bootstrap, topics, group, url, sinks, work_dir, options.settings)
        services = [ServiceInstance(children, deployment, f"service-{size}-{n + 1}") for n in range(options.replicas)]
        profiler = Profiler(children, work_dir, options.profile_rate) if options.profile == "py-spy" else None
        before = {"sinks": sinks.proc(), "broker": broker.proc()}
        harness_before = own_figures()["cpu_seconds"]
        say(f"N={size:,}: starting {options.replicas} service instance(s) …")
        started = time.time()
        figures["ready_seconds"] = await start_one_by_one(services)
        if profiler is not None:
            profiler.attach(services[0].pid)
        if options.replicas > 1:
            # Publish once every instance holds its partitions, so the assignment, not who joined first,
            # decides who does what.
            figures["group"] = await wait_for_group(broker.bootstrap, group, options.replicas, topic)
            say(f"N={size:,}: group stable, partitions per instance: {figures['group']['partitions_of_topic']}")
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


# --------------------------------------------------------------------------------------------- ratios, targets


def judge(results: dict[str, Any], options: Options) -> dict[str, Any]:
    """The issue's ratios and targets, per N, from the figures of this run."""
    per_notification = options.guardians * len(CHANNELS)
    email_share = sms_share = 1 / len(CHANNELS)
    verdicts: dict[str, Any] = {"sizes": {}}
    ceilings = results.get("sink_ceilings", {})
    smtp_rate = ceilings.get("smtp", {}).get("messages_per_second")
    sms_rate = ceilings.get("sms", {}).get("messages_per_second")
    naive_rate = ceilings.get("naive", {}).get("prerendered", {}).get("emails_per_second")
    for run in results["runs"]:
        pipeline = run.get("pipeline", {})
        rate = pipeline.get("notifications_per_second")
        if not rate:
            continue
        # Every ceiling in notifications/s of this mix (half email, half SMS): what that part alone would allow.
        candidates = {}
        kafka = run.get("kafka_ceiling", {}).get("events_per_second")
        if kafka:
            candidates["kafka (events/s × notifications per event)"] = kafka * per_notification
        if smtp_rate:
            candidates["smtp sink (emails/s ÷ email share)"] = smtp_rate / email_share
        if sms_rate:
            candidates["sms sink (SMS/s ÷ SMS share)"] = sms_rate / sms_share
        verdict: dict[str, Any] = {"notifications_per_second": rate, "ceilings_notifications_per_second": candidates}
        if candidates:
            lower_name = min(candidates, key=lambda name: candidates[name])
            verdict |= {
                "lower_ceiling": lower_name,
                "pipeline_over_lower_ceiling": rate / candidates[lower_name],
                "target_0_7_of_lower_ceiling_met": rate >= 0.7 * candidates[lower_name],
            }
        email_rate = pipeline.get("per_channel_per_second", {}).get("email")
        if naive_rate and email_rate:
            verdict |= {
                "pipeline_emails_over_naive_emails": email_rate / naive_rate,
                "pipeline_notifications_over_naive_emails": rate / naive_rate,
                "target_5x_naive_met_emails": email_rate >= 5 * naive_rate,
                "target_5x_naive_met_notifications": rate >= 5 * naive_rate,
            }
        verdicts["sizes"][str(run["events"])] = verdict
    rss = {
        str(run["events"]): max((service.get("peak_rss_mib", 0.0) for service in run.get("services", [])), default=0.0)
        for run in results["runs"]
    }
    verdicts["peak_rss_mib_by_n"] = rss
    if len(rss) >= 2:
        values = list(rss.values())
        verdicts["memory_growth_mib_smallest_to_largest_n"] = values[-1] - values[0]
        verdicts["target_memory_flat_met"] = values[-1] <= values[0] * 1.10
    latency = results.get("paced", {}).get("pipeline", {}).get("latency_ms", {}).get("all", {})
    if latency:
        verdicts["paced_p99_ms"] = latency["p99"]
        verdicts["target_p99_below_500_ms_met"] = latency["p99"] < 500
    return verdicts


# --------------------------------------------------------------------------------------------------- output


def _fmt(value: Any, spec: str = ",.0f", unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:{spec}}{unit}"


def _met(flag: Any) -> str:
    return "–" if flag is None else ("[green]met[/]" if flag else "[red]not met[/]")


def print_summary(results: dict[str, Any]) -> None:
    out = Console(width=140)
    print_runs(out, results)
    if results.get("sink_ceilings"):
        print_ceilings(out, results["sink_ceilings"])
    if results.get("paced", {}).get("pipeline", {}).get("latency_ms"):
        print_paced(out, results["paced"])
    if any("lower_ceiling" in verdict for verdict in results.get("targets", {}).get("sizes", {}).values()):
        print_targets(out, results["targets"])
    for run in results["runs"]:
        if "own_by_component" in run.get("profile", {}):
            print_profile(out, run["events"], run["profile"])


def print_runs(out: Console, results: dict[str, Any]) -> None:
    options = results["options"]
    per_event = options["guardians"] * len(CHANNELS)
    runs = results["runs"]
    table = Table(
        title=f"pipeline benchmark — invitations service, {results['machine']['cpus']} CPUs, "
        f"{options['guardians']} guardians × email+SMS = {per_event} notifications per event"
    )
    table.add_column("figure")
    for run in runs:
        table.add_column(f"N = {run['events']:,}", justify="right")

    def row(label: str, cell: Any) -> None:
        table.add_row(label, *(cell(run) for run in runs))

    def kafka(run: dict[str, Any]) -> str:
        rate = run.get("kafka_ceiling", {}).get("events_per_second")
        return f"{_fmt(rate)} (≙ {_fmt(rate * per_event)})" if rate else "–"

    def cpu(service: dict[str, Any]) -> str:
        return f"{_fmt(service.get('cpu_seconds_until_ready'), '.1f')} + {_fmt(service.get('cpu_seconds_after_ready'))}"

    row(
        "load average: at start · mean during drain",
        lambda run: (
            f"{run['load_average_at_start'][0]:.2f} · "
            f"{_fmt(run['wait'].get('load_average_during', {}).get('mean'), '.2f')}"
        ),
    )
    row(
        "CPU calibration loop at start (lower = faster)",
        lambda run: _fmt(run.get("calibration_ms_at_start"), ".0f", " ms"),
    )
    row("database · instances", lambda run: f"{run.get('database', '?')} · {len(run.get('services', []))}")
    row("accepted / expected", lambda run: f"{run['pipeline']['accepted']:,} / {run['wait']['expected']:,}")
    row("outcome", lambda run: run["wait"]["outcome"])
    row(
        "[bold]pipeline notifications/s[/] (first→last acceptance)",
        lambda run: f"[bold]{_fmt(run['pipeline'].get('notifications_per_second'))}[/]",
    )
    row(
        "  emails/s · SMS/s",
        lambda run: " · ".join(
            _fmt(run["pipeline"].get("per_channel_per_second", {}).get(channel.value)) for channel in CHANNELS
        ),
    )
    row("  events/s", lambda run: _fmt(run["pipeline"].get("notifications_per_second", 0) / per_event, ",.1f"))
    row("  first→last acceptance", lambda run: _fmt(run["pipeline"].get("first_to_last_seconds"), ",.1f", " s"))
    row(
        "duplicates · missing · unexpected",
        lambda run: "{duplicates} · {missing} · {unexpected}".format(**run["pipeline"]),
    )
    row("ledger", lambda run: ", ".join(f"{key} {value:,}" for key, value in sorted(run.get("ledger", {}).items())))
    row("Kafka ceiling events/s (≙ notifications/s)", kafka)
    row("service CPU s (start-up + drain)", lambda run: " | ".join(cpu(service) for service in run["services"]))
    row(
        "CPU ms per notification: service · sinks · broker",
        lambda run: " · ".join(
            _fmt(run["cost"].get(f"{name}_cpu_ms_per_notification"), ".2f") for name in ("service", "sinks", "broker")
        ),
    )
    row(
        "[bold]service peak RSS[/] (VmHWM)",
        lambda run: " | ".join(_fmt(service.get("peak_rss_mib"), ".0f", " MiB") for service in run["services"]),
    )
    row(
        "sinks peak RSS · broker RSS",
        lambda run: (
            f"{_fmt(run['sinks_process'].get('peak_rss_mib'), '.0f', ' MiB')} · "
            f"{_fmt(run.get('broker_process', {}).get('rss_mib'), '.0f', ' MiB')}"
        ),
    )
    if any(len(run.get("services", [])) > 1 for run in runs):
        row(
            "sent per instance (its /metrics)",
            lambda run: " | ".join(f"{metrics.get('sent', 0):,}" for metrics in run.get("service_metrics", [])),
        )
        row("meeting.created partitions per instance", lambda run: str(run.get("group", {}).get("partitions_of_topic")))
    out.print(table)


def print_ceilings(out: Console, ceilings: dict[str, Any]) -> None:
    table = Table(title="ceilings and the naive peer (messages/s of one channel)")
    table.add_column("reference")
    table.add_column("rate", justify="right")
    table.add_column("detail")
    smtp, sms, naive = ceilings["smtp"], ceilings["sms"], ceilings["naive"]
    sink_cpu = {name: ceilings[name]["sink_process"].get("cpu_ms_per_message") for name in ("smtp", "sms")}
    table.add_row(
        f"SMTP sink blasted ({smtp['connections']} aiosmtplib sessions)",
        f"{smtp['messages_per_second']:,.0f} emails/s",
        f"{smtp['email_bytes']:,} B emails; sink CPU {_fmt(sink_cpu['smtp'], '.2f')} ms each",
    )
    table.add_row(
        f"SMS sink blasted ({sms['concurrency']} httpx requests in flight)",
        f"{sms['messages_per_second']:,.0f} SMS/s",
        f"sink CPU {_fmt(sink_cpu['sms'], '.2f')} ms each; "
        f"client CPU {1000 * sms['process']['cpu_seconds'] / max(sms['sent'], 1):.2f} ms each",
    )
    table.add_row(
        "naive peer: smtplib, new connection per email",
        f"{naive['prerendered']['emails_per_second']:,.0f} emails/s",
        f"{naive['prerendered']['ms_per_email']:.2f} ms per email, pre-rendered",
    )
    table.add_row(
        "  … rendering each email first",
        f"{naive['rendering_each']['emails_per_second']:,.0f} emails/s",
        f"{naive['rendering_each']['ms_per_email']:.2f} ms per email",
    )
    out.print(table)


def print_paced(out: Console, pace: dict[str, Any]) -> None:
    table = Table(
        title=f"paced: {pace['notifications_per_second']:,.0f} notifications/s ({pace['events_per_second']:.2f} "
        f"events/s) for {pace['events']:,} events — latency = acceptance − event time"
    )
    table.add_column("channel")
    for name in ("count", "p50", "p95", "p99", "max"):
        table.add_column(name, justify="right")
    for name, figures in pace["pipeline"]["latency_ms"].items():
        if figures:
            quantiles = (f"{figures[key]:,.0f} ms" for key in ("p50", "p95", "p99", "max"))
            table.add_row(name, f"{figures['count']:,}", *quantiles)
    out.print(table)


def print_targets(out: Console, verdicts: dict[str, Any]) -> None:
    table = Table(title="the issue's targets")
    table.add_column("N")
    table.add_column("pipeline / lower ceiling (≥ 0.7)")
    table.add_column("pipeline / naive (≥ 5×): emails/s · notifications/s")
    for size, verdict in verdicts["sizes"].items():
        table.add_row(
            f"{int(size):,}",
            f"{_fmt(verdict.get('pipeline_over_lower_ceiling'), '.3f')} of {verdict.get('lower_ceiling', '–')} "
            f"{_met(verdict.get('target_0_7_of_lower_ceiling_met'))}",
            f"{_fmt(verdict.get('pipeline_emails_over_naive_emails'), '.3f', '×')} "
            f"{_met(verdict.get('target_5x_naive_met_emails'))} · "
            f"{_fmt(verdict.get('pipeline_notifications_over_naive_emails'), '.3f', '×')} "
            f"{_met(verdict.get('target_5x_naive_met_notifications'))}",
        )
    out.print(table)
    if "paced_p99_ms" in verdicts:
        met = _met(verdicts["target_p99_below_500_ms_met"])
        out.print(f"p99 latency at the paced rate: {verdicts['paced_p99_ms']:,.0f} ms (< 500 ms: {met})")
    if "target_memory_flat_met" in verdicts:
        met = _met(verdicts["target_memory_flat_met"])
        out.print(f"service peak RSS by N: {verdicts['peak_rss_mib_by_n']} (flat within 10 %: {met})")


def print_profile(out: Console, events: int, profile: dict[str, Any]) -> None:
    split = ", ".join(f"{name} {count:,}" for name, count in profile.get("samples_by_thread", {}).items())
    table = Table(
        title=f"py-spy profile of the service, N = {events:,}: {profile['samples']:,} samples ({split}); "
        "shares of the main thread's busy samples"
    )
    table.add_column("own time by component")
    table.add_column("share", justify="right")
    table.add_column("inclusive time by function")
    table.add_column("share", justify="right")
    components, frames = profile["own_by_component"][:15], profile["inclusive_by_frame"][:15]
    for index in range(max(len(components), len(frames))):
        left = components[index] if index < len(components) else None
        right = frames[index] if index < len(frames) else None
        table.add_row(
            left["name"] if left else "",
            f"{left['share']:.1%}" if left else "",
            right["name"] if right else "",
            f"{right['share']:.1%}" if right else "",
        )
    out.print(table)


DEFINITIONS = {
    "notifications_per_second": "notifications (emails + SMS) accepted by the sinks, divided by the time from the "
    "first acceptance to the last",
    "kafka_ceiling.events_per_second": "events read by a plain aiokafka consumer doing no work, first record to last; "
    "× notifications per event gives the notification-equivalent",
    "sink_ceilings.*.messages_per_second": "messages of that one channel accepted per second when blasted directly",
    "naive.prerendered": "smtplib, one new connection per email, sequential, the email rendered beforehand",
    "latency_ms": "sink acceptance time − the event's CloudEvents time (= its publish moment), first acceptance",
    "cpu_seconds": "utime + stime from /proc/<pid>/stat; peak_rss_mib is VmHWM from /proc/<pid>/status",
    "calibration_ms": "CPU ms of a fixed pure-Python loop (best of 3): how fast the shared CPUs were at that moment",
}


async def run_benchmark(options: Options, work_dir: Path, results: dict[str, Any]) -> None:
    children = Children()
    broker = Broker(work_dir / "kafka")
    # Ctrl-C and SIGTERM cancel this task, and the finally block below stops every child and the broker. Handled
    # here rather than left to asyncio.run, which ignores SIGINT when the shell started the script in the
    # background with SIGINT ignored, and knows nothing of SIGTERM.
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, main_task.cancel)
    try:
        say("starting a Kafka broker of its own …")
        await broker.start()
        say(f"broker on {broker.bootstrap}")
        per_event = options.guardians * len(CHANNELS)
        with progress_bars() as progress:
            for size in options.sizes:
                say(f"N={size:,}: {size * per_event:,} notifications (load average {os.getloadavg()[0]:.2f})")
                results["runs"].append(
                    await drain(
                        options=options,
                        children=children,
                        broker=broker,
                        work_dir=work_dir,
                        size=size,
                        progress=progress,
                    )
                )
                run = results["runs"][-1]
                say(
                    f"N={size:,}: {run['pipeline'].get('notifications_per_second', 0):,.0f} notifications/s, "
                    f"{run['wait']['outcome']}"
                )
            if options.paced_seconds > 0 and options.replicas == 1:
                best = max(
                    (run["pipeline"].get("notifications_per_second", 0.0) for run in results["runs"]), default=0.0
                )
                notifications_rate = options.paced_rate or best / 2
                if notifications_rate > 0:
                    rate = notifications_rate / per_event
                    seconds = options.paced_seconds
                    say(f"paced: {notifications_rate:,.0f} notifications/s ({rate:.2f} events/s) for {seconds:.0f} s …")
                    results["paced"] = await paced(
                        options=options,
                        children=children,
                        broker=broker,
                        work_dir=work_dir,
                        rate=rate,
                        progress=progress,
                    )
        if options.ceilings:
            results["sink_ceilings"] = await sink_ceilings(options, children, work_dir)
    finally:
        for number in (signal.SIGINT, signal.SIGTERM):
            # Cleaning up is not interrupted by a second Ctrl-C; it is bounded (at most ~20 s per process).
            loop.add_signal_handler(number, say, "stopping the child processes and the broker; please wait")
        children.stop_all()
        with contextlib.suppress(Exception):
            await broker.stop()


def parse_options(argv: Sequence[str]) -> tuple[Options, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="bench/pipeline_bench.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000, help="N, events to publish (default 1000)")
    parser.add_argument("--sizes", help="several N in one run, e.g. 1000,10000,100000 (overrides --events)")
    parser.add_argument("--guardians", type=int, default=5, help="guardians per event, each email + SMS (5)")
    parser.add_argument("--partitions", type=int, help="partitions of the event topics (3; 6 with --replicas > 1)")
    parser.add_argument("--replicas", type=int, default=1, help="service instances in one consumer group (1)")
    parser.add_argument("--database-url", help="a PostgreSQL server (postgresql+asyncpg://…); default: SQLite files")
    parser.add_argument("--paced-seconds", type=float, default=60.0, help="length of the paced run; 0: none (60)")
    parser.add_argument("--paced-rate", type=float, help="notifications/s in the paced run (half the best drain rate)")
    parser.add_argument("--blast", type=int, default=10_000, help="messages per sink in the ceiling blasts (10000)")
    parser.add_argument("--smtp-connections", type=int, default=8, help="aiosmtplib sessions in the SMTP blast (8)")
    parser.add_argument("--sms-concurrency", type=int, default=8, help="httpx requests in flight in the SMS blast (8)")
    parser.add_argument("--naive", type=int, default=2000, help="emails the naive peer sends (2000)")
    parser.add_argument("--naive-rendered", type=int, default=300, help="… and renders one by one first (300)")
    parser.add_argument("--no-ceilings", action="store_true", help="skip the Kafka and sink ceilings and naive peer")
    parser.add_argument("--profile", choices=["none", "py-spy"], default="none", help="sample the service (none)")
    parser.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second (100)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="longest drain, in seconds (3600)")
    parser.add_argument("--stall", type=float, default=120.0, help="give up after this long with no progress (120)")
    parser.add_argument(
        "--provider-latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="the sinks wait this long before accepting each message, like a remote provider (0; not the ceilings)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a service setting other than its default, e.g. INVITATIONS_EVENT_CONCURRENCY=1 (repeatable)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, databases, profiles)")
    parser.add_argument("--json", type=Path, help="where to write all figures (default: a file in /tmp)")
    args = parser.parse_args(argv)
    sizes = [int(size.replace("_", "")) for size in args.sizes.split(",")] if args.sizes else [args.events]
    if any(size < 1 for size in sizes) or args.guardians < 1 or args.replicas < 1:
        parser.error("sizes, --guardians and --replicas must be positive")
    if args.replicas > 1 and not (args.database_url or "").startswith("postgresql"):
        parser.error("--replicas > 1 needs --database-url postgresql+asyncpg://… (SQLite is one process's database)")
    options = Options(
        sizes=sizes,
        guardians=args.guardians,
        partitions=args.partitions or (6 if args.replicas > 1 else 3),
        replicas=args.replicas,
        database_url=args.database_url,
        paced_seconds=args.paced_seconds,
        paced_rate=args.paced_rate,
        blast=args.blast,
        smtp_connections=args.smtp_connections,
        sms_concurrency=args.sms_concurrency,
        naive=args.naive,
        naive_rendered=args.naive_rendered,
        ceilings=not args.no_ceilings,
        profile=args.profile,
        profile_rate=args.profile_rate,
        timeout=args.timeout,
        stall=args.stall,
        settings=dict(setting.partition("=")[::2] for setting in args.set),
        provider_latency=args.provider_latency,
    )
    harness_owned = ("KAFKA_", "TOPIC_PREFIX", "DATABASE_URL")
    if any(not name or name.upper().startswith(harness_owned) for name in options.settings):
        parser.error("--set takes NAME=VALUE for a service setting; Kafka, topics and database are the harness's")
    return options, args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    options, args = parse_options(argv)
    if options.profile == "py-spy":
        python_tool("py-spy")  # fail now, not after the first drain
    results: dict[str, Any] = {
        "command": " ".join(["uv run python bench/pipeline_bench.py", *argv]),
        "started_at": datetime.now(UTC).isoformat(),
        "load_average_at_start": list(os.getloadavg()),
        "calibration_ms_at_start": calibration_ms(),
        "machine": machine(),
        "options": asdict(options) | {"database_url": "postgresql" if options.database_url else "sqlite"},
        "service_settings": "defaults (INVITATIONS_CONCURRENCY 64, INVITATIONS_EVENT_CONCURRENCY 8, SMTP_POOL_SIZE 16, "
        "SMS_MAX_CONNECTIONS 32, "
        "production retry settings), LOG_LEVEL INFO; only the Kafka, database and delivery endpoints are set, and "
        "any --set: " + (", ".join(f"{name}={value}" for name, value in options.settings.items()) or "none"),
        "definitions": DEFINITIONS,
        "runs": [],
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.json or Path(tempfile.gettempdir()) / f"pipeline-bench-{stamp}.json"
    work = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    interrupted = False
    try:
        asyncio.run(run_benchmark(options, work, results))
    except (KeyboardInterrupt, asyncio.CancelledError):
        interrupted = True
        say("interrupted; child processes stopped, writing what was measured")
    except Exception as error:  # the figures measured so far are still written
        results["error"] = repr(error)
        console.print_exception()
    finally:
        if args.keep:
            say(f"work dir (kept): {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["finished_at"] = datetime.now(UTC).isoformat()
    results["interrupted"] = interrupted
    results["harness_process"] = own_figures()
    results["targets"] = judge(results, options)
    out.write_text(json.dumps(results, indent=2, default=str))
    if results["runs"]:
        print_summary(results)
    say(f"all figures: {out}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
