"""Benchmark of the reminders service: a large schedule, a restart, and a burst of reminders in one minute.

    uv run python bench/reminders_bench.py                      # 100,000 pending, 10,000 due in one minute, SQLite
    uv run python bench/reminders_bench.py --reminders 10000 --burst 1000
    uv run python bench/reminders_bench.py --database-url postgresql+asyncpg://postgres@127.0.0.1:55432/notify

Three phases, each in a fresh child process (so its peak RSS is that of the service code alone):

1. schedule: the service's runtime is opened as at start-up and fed realistic `meeting.created` events through
   `ReminderService.handle` (what the Kafka handler calls: `Scheduler.apply`, then re-arming the alarm), with a
   fixed clock. `--burst` reminders are SMS reminders two hours before meetings that start within one minute
   two days from now; the rest are email (two days before) and SMS (two hours before) reminders of meetings
   spread over the four weeks after that, all falling due after the burst.
2. restart: a new process opens the runtime against the filled database and starts the alarm, exactly as the
   service does at start-up; measured until the wake-up is armed for the next due reminder. Repeated.
3. burst: a new process opens the runtime with a clock that runs at wall-clock speed but is set to a few
   seconds before the burst minute, starts the real APScheduler alarm and lets it fire by itself, delivering
   every SMS over HTTP to a local webhook sink in the parent process. Lateness is measured per reminder from
   its due time to (a) the moment the sink accepted the SMS and (b) the `sent` status report, which the
   service emits after recording the outcome in the delivery ledger.

The database is a SQLite file in a temporary folder, or (with `--database-url`) a fresh database created on
that PostgreSQL server and dropped afterwards. Only loopback traffic; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from machine_info import machine  # bench/, on the path when a script here runs

from notify_reminders.runtime import Runtime
from notify_reminders.settings import RemindersSettings
from notify_reminders.store import as_utc, reminders
from notify_shared import samples
from notify_shared.contract import Channel, MeetingCreated, MeetingKind, NotificationStatusReport, School
from notify_shared.kafka.outbound import KafkaStatusSink

OSLO = ZoneInfo("Europe/Oslo")
PER_MEETING = 50
"""Guardians invited to each meeting (a parent meeting of two classes)."""
SCHOOLS = 100
BACKGROUND_DAYS = 28
"""The meetings outside the burst start on the 28 days from three days after the burst day on."""
BURST_LOCAL_TIME = time_of_day(14, 0)
"""The burst minute, in Oslo time: SMS reminders two hours before meetings starting at 16:00."""
CHILD_TIMEOUT_SECONDS = 1800.0


# --------------------------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    """What to schedule; shared by the parent and its children through a JSON file."""

    reminders: int
    burst: int
    burst_spread_seconds: int
    scheduling_time: str
    """ISO instant: the fixed clock while scheduling, i.e. when every guardian was invited."""
    burst_start: str
    """ISO instant: the first due time of the burst."""
    database_url: str
    work_dir: str

    @property
    def burst_meetings(self) -> int:
        return self.burst // PER_MEETING

    @property
    def background_meetings(self) -> int:
        return (self.reminders - self.burst) // (2 * PER_MEETING)

    @property
    def invited_at(self) -> datetime:
        return datetime.fromisoformat(self.scheduling_time)

    @property
    def first_due(self) -> datetime:
        return datetime.fromisoformat(self.burst_start)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> Plan:
        return cls(**json.loads(path.read_text()))


def make_plan(*, reminders_total: int, burst: int, spread: int, database_url: str, work_dir: Path) -> Plan:
    now = datetime.now(UTC).replace(microsecond=0)
    burst_day = now.astimezone(OSLO).date() + timedelta(days=2)
    burst_start = datetime.combine(burst_day, BURST_LOCAL_TIME, tzinfo=OSLO).astimezone(UTC)
    return Plan(
        reminders=reminders_total,
        burst=burst,
        burst_spread_seconds=spread,
        scheduling_time=now.isoformat(),
        burst_start=burst_start.isoformat(),
        database_url=database_url,
        work_dir=str(work_dir),
    )


def _school(number: int) -> School:
    return samples.sample_school(id=f"nor-bench-{number:03d}", name=f"Benkemark skole {number}")


def _event(plan: Plan, index: int, starts_at: datetime, channels: Sequence[Channel]) -> MeetingCreated:
    meeting = samples.sample_meeting(
        meeting_id=f"m-bench-{index:05d}",
        kind=MeetingKind.PARENT_MEETING,
        title=f"Foreldremøte {index}",
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=90),
    )
    first = index * PER_MEETING + 1
    recipients = [samples.sample_guardian(n, channels=list(channels)) for n in range(first, first + PER_MEETING)]
    return samples.meeting_created(
        school=_school(index % SCHOOLS), meeting=meeting, recipients=recipients, time=plan.invited_at
    )


@dataclass(frozen=True)
class EventSpec:
    """One meeting to announce; turned into its event just before it is handled, so events do not pile up."""

    index: int
    starts_at: datetime
    channels: tuple[Channel, ...]

    def event(self, plan: Plan) -> MeetingCreated:
        return _event(plan, self.index, self.starts_at, self.channels)


def event_specs(plan: Plan) -> list[EventSpec]:
    """Burst meetings (SMS only, starting two hours after the burst minute) interleaved with the rest."""
    burst = [
        EventSpec(
            index,
            plan.first_due + timedelta(hours=2, seconds=index * plan.burst_spread_seconds // plan.burst_meetings),
            (Channel.SMS,),
        )
        for index in range(plan.burst_meetings)
    ]
    first_day = plan.first_due.astimezone(OSLO).date() + timedelta(days=3)
    background = []
    for number in range(plan.background_meetings):
        day: date = first_day + timedelta(days=number % BACKGROUND_DAYS)
        # 15-minute slots from 08:00 to 19:45, local time; early ones have their SMS moved out of quiet hours.
        local = datetime.combine(day, time_of_day(8), tzinfo=OSLO) + timedelta(minutes=15 * ((number * 7) % 48))
        background.append(EventSpec(plan.burst_meetings + number, local, (Channel.EMAIL, Channel.SMS)))
    # Interleave, as events would arrive from many schools.
    specs: list[EventSpec] = []
    step = max(1, len(background) // max(1, len(burst)))
    for position, spec in enumerate(background):
        if position % step == 0 and burst:
            specs.append(burst.pop())
        specs.append(spec)
    return specs + burst


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


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of `values` (not empty)."""
    ordered = sorted(values)
    rank = max(1, int(-(-fraction * len(ordered) // 1)))  # ceil(fraction * n), at least 1
    return ordered[min(rank, len(ordered)) - 1]


def distribution(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": max(values),
        "min": min(values),
        "mean": sum(values) / len(values),
    }


# ------------------------------------------------------------------------------------------------ children


class FixedClock:
    def __init__(self, moment: datetime) -> None:
        self._moment = moment

    def __call__(self) -> datetime:
        return self._moment


class ShiftedClock:
    """The wall clock moved by a fixed offset: it runs at real speed but shows another date."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class _DiscardingPublisher:
    async def publish(self, message: Any, /, *, key: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
        return None


class RecordingStatusSink:
    """Builds and encodes each status event as the Kafka sink does, keeps the report, publishes nothing."""

    def __init__(self, expected: int = 0) -> None:
        self._encoder = KafkaStatusSink(_DiscardingPublisher(), service="reminders")
        self._expected = expected
        self.reports: list[NotificationStatusReport] = []
        self.all_in = asyncio.Event()
        """Set once `expected` reports have come in."""

    async def publish_status(self, report: NotificationStatusReport) -> None:
        await self._encoder.publish_status(report)
        self.reports.append(report)
        if self._expected and len(self.reports) >= self._expected:
            self.all_in.set()


def service_settings(plan: Plan, *, sms_url: str | None = None, smtp_port: int | None = None) -> RemindersSettings:
    """The service's settings for this run: defaults, except the database and the local delivery endpoints."""
    work_dir = Path(plan.work_dir)
    fields: dict[str, Any] = {
        "database_url": plan.database_url,
        "outbox_dir": work_dir / "outbox",
        "instance_id": "bench-replica",
    }
    if sms_url is not None:
        fields |= {"sms_provider": "webhook", "sms_webhook_url": sms_url}
    if smtp_port is not None:
        fields |= {"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "smtp_security": "none"}
    return RemindersSettings(**fields)


def _import_the_service() -> dict[str, float]:
    # What a service process has loaded before it opens anything: the app module pulls in FastStream and aiokafka.
    importlib.import_module("notify_reminders.app")
    return {"rss_after_import_mib": current_rss_mib()}


async def child_schedule(plan: Plan) -> dict[str, Any]:
    baseline = _import_the_service()
    specs = event_specs(plan)
    runtime = Runtime()
    await runtime.open(service_settings(plan), status_sink=RecordingStatusSink(), clock=FixedClock(plan.invited_at))
    try:
        await runtime.alarm.start()
        per_event: list[float] = []
        build_seconds = 0.0
        cpu_before = cpu_seconds()
        for spec in specs:
            built = time.perf_counter()
            event = spec.event(plan)  # what the Kafka decoder would have produced; not part of the timing
            one = time.perf_counter()
            await runtime.service.handle(event)
            done = time.perf_counter()
            per_event.append(done - one)
            build_seconds += one - built
        seconds = sum(per_event)
        cpu = cpu_seconds() - cpu_before  # includes building the events (build_events_seconds)
        counts = await runtime.store.count_by_state()
        next_due = await runtime.store.next_due()
    finally:
        await runtime.close()
    return baseline | {
        "events": len(specs),
        "build_events_seconds": build_seconds,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "events_per_second": len(specs) / seconds,
        "reminders_per_second": counts.get("pending", 0) / seconds,
        "per_event_ms": {name: value * 1000 for name, value in distribution(per_event).items()},
        "states": counts,
        "next_due": next_due.isoformat() if next_due else None,
        "peak_rss_mib": peak_rss_mib(),
    }


async def child_restart(plan: Plan) -> dict[str, Any]:
    baseline = _import_the_service()
    runtime = Runtime()
    started = time.perf_counter()
    # The wall clock, as in production: nothing is due yet, so start-up only arms the wake-up.
    await runtime.open(service_settings(plan), status_sink=RecordingStatusSink(), clock=lambda: datetime.now(UTC))
    opened = time.perf_counter()
    try:
        await runtime.alarm.start()
        armed = time.perf_counter()
        armed_wall = time.time()
        rss_armed = current_rss_mib()
        peak = peak_rss_mib()
        armed_for = await runtime.alarm.rearm()  # idempotent; returns the due time the wake-up is armed for
        counts = await runtime.store.count_by_state()
    finally:
        await runtime.close()
    return baseline | {
        "open_seconds": opened - started,
        "arm_seconds": armed - opened,
        "seconds": armed - started,
        "armed_wall": armed_wall,
        "armed_for": armed_for.isoformat() if armed_for else None,
        "pending": counts.get("pending", 0),
        "rss_when_armed_mib": rss_armed,
        "peak_rss_mib": peak,
    }


async def child_burst(
    plan: Plan, *, sms_url: str, smtp_port: int, lead_seconds: float, wait_seconds: float
) -> dict[str, Any]:
    baseline = _import_the_service()
    sink = RecordingStatusSink(expected=plan.burst)
    runtime = Runtime()
    # Set the service's clock to `lead_seconds` before the burst; from here on it runs at wall-clock speed.
    clock = ShiftedClock(plan.first_due - timedelta(seconds=lead_seconds) - datetime.now(UTC))
    await runtime.open(service_settings(plan, sms_url=sms_url, smtp_port=smtp_port), status_sink=sink, clock=clock)
    cpu_before = cpu_seconds()
    try:
        await runtime.alarm.start()
        opened_at = clock()
        burst_end = plan.first_due + timedelta(seconds=plan.burst_spread_seconds)
        deadline = burst_end + timedelta(seconds=wait_seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sink.all_in.wait(), (deadline - clock()).total_seconds())
        finished_at = clock()
        peak = peak_rss_mib()
        cpu = cpu_seconds() - cpu_before
        # Let the firing round in flight settle its last rows before closing (close() does not wait for it).
        for _ in range(100):
            if not (await runtime.store.count_by_state()).get("claimed"):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)  # its last, empty claim and the re-arm
        async with runtime.store.engine.connect() as connection:
            rows = await connection.execute(
                sa.select(reminders.c.reminder_id, reminders.c.due_at).where(
                    reminders.c.due_at >= plan.first_due, reminders.c.due_at <= burst_end
                )
            )
            due = {row.reminder_id: as_utc(row.due_at) for row in rows}
        counts = await runtime.store.count_by_state()
    finally:
        await runtime.close()
    offset = clock.offset.total_seconds()
    records = [
        {
            "notification_id": report.notification_id,
            "status": report.status.value,
            "reason": report.reason,
            "due_wall": due[report.source_event_id].timestamp() - offset if report.source_event_id in due else None,
            "status_wall": report.occurred_at.timestamp() - offset,
        }
        for report in sink.reports
    ]
    return baseline | {
        "alarm_started_before_due_seconds": (plan.first_due - opened_at).total_seconds(),
        "due_in_window": len(due),
        "statuses": len(sink.reports),
        "complete": len(sink.reports) >= plan.burst,
        "run_seconds": (finished_at - opened_at).total_seconds(),
        "cpu_seconds": cpu,
        "states": counts,
        "peak_rss_mib": peak,
        "records": records,
    }


def run_child(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", choices=["schedule", "restart", "burst"])
    parser.add_argument("--plan", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sms-url", default="")
    parser.add_argument("--smtp-port", type=int, default=0)
    parser.add_argument("--lead", type=float, default=10.0)
    parser.add_argument("--wait", type=float, default=480.0)
    args = parser.parse_args(argv)
    from notify_shared.logs import configure_logging  # noqa: PLC0415 - as the service does at start

    configure_logging()
    plan = Plan.load(args.plan)
    match args.phase:
        case "schedule":
            result = asyncio.run(child_schedule(plan))
        case "restart":
            result = asyncio.run(child_restart(plan))
        case _:
            result = asyncio.run(
                child_burst(
                    plan, sms_url=args.sms_url, smtp_port=args.smtp_port, lead_seconds=args.lead, wait_seconds=args.wait
                )
            )
    args.out.write_text(json.dumps(result))


# -------------------------------------------------------------------------------------------------- parent


class StampedList(list[dict[str, Any]]):
    """The SMS sink's list of received messages, noting the wall-clock time of each arrival."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []

    def append(self, item: dict[str, Any]) -> None:
        self.arrivals.append(time.time())
        super().append(item)


async def spawn(phase: str, plan_path: Path, work_dir: Path, *extra: str) -> dict[str, Any]:
    """Run one phase in a fresh interpreter; its log goes to a file in the work dir."""
    out = work_dir / f"{phase}-{time.monotonic_ns()}.json"
    log = out.with_suffix(".log")
    spawned = time.time()
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
    if "armed_wall" in result:
        # What an operator waits for: interpreter start, imports, opening the database, arming the wake-up.
        result["process_start_to_armed_seconds"] = result.pop("armed_wall") - spawned
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


def burst_figures(child: dict[str, Any], arrivals: dict[str, float]) -> dict[str, Any]:
    records = child.pop("records")
    sent = [record for record in records if record["status"] == "sent" and record["due_wall"] is not None]
    status_lateness = [record["status_wall"] - record["due_wall"] for record in sent]
    sink_lateness = [
        arrivals[record["notification_id"]] - record["due_wall"]
        for record in sent
        if record["notification_id"] in arrivals
    ]
    not_sent: dict[str, int] = {}
    for record in records:
        if record["status"] != "sent":
            key = f"{record['status']}:{record['reason']}"
            not_sent[key] = not_sent.get(key, 0) + 1
    figures = child | {"sent": len(sent), "not_sent": not_sent, "sms_received": len(arrivals)}
    if sent:
        first_due = min(record["due_wall"] for record in sent)
        last_due = max(record["due_wall"] for record in sent)
        last_status = max(record["status_wall"] for record in sent)
        first_status = min(record["status_wall"] for record in sent)
        figures |= {
            "lateness_to_status_seconds": distribution(status_lateness),
            "lateness_to_sms_sink_seconds": distribution(sink_lateness),
            "due_window_seconds": last_due - first_due,
            "first_due_to_last_sent_seconds": last_status - first_due,
            "drained_after_last_due_seconds": last_status - last_due,
            "throughput_per_second": len(sent) / max(last_status - first_status, 1e-9),
        }
    return figures


@contextmanager
def _stamped_sms_sink() -> Iterator[tuple[str, StampedList]]:
    from notify_shared.testing.sinks import sms_sink  # noqa: PLC0415 - parent only, kept out of the children

    with sms_sink() as sink:
        stamped = StampedList()
        sink.received = stamped
        yield sink.url, stamped


@asynccontextmanager
async def database(url: str | None, work_dir: Path) -> AsyncIterator[str]:
    if url is None:
        yield f"sqlite+aiosqlite:///{work_dir / 'reminders.db'}"
        return
    from notify_shared.testing.databases import fresh_postgres_database  # noqa: PLC0415 - only for PostgreSQL

    async with fresh_postgres_database(url, prefix="notify_bench") as fresh:
        yield fresh


async def run_benchmark(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "started_at": datetime.now(UTC).isoformat()}
    async with database(args.database_url, work_dir) as url:
        plan = make_plan(
            reminders_total=args.reminders,
            burst=args.burst,
            spread=args.burst_spread,
            database_url=url,
            work_dir=work_dir,
        )
        plan_path = work_dir / "plan.json"
        plan.save(plan_path)
        results["plan"] = {key: value for key, value in asdict(plan).items() if key not in ("database_url", "work_dir")}
        results["plan"] |= {
            "database": "postgresql" if url.startswith("postgresql") else "sqlite",
            "burst_meetings": plan.burst_meetings,
            "background_meetings": plan.background_meetings,
            "guardians_per_meeting": PER_MEETING,
        }
        say(f"schedule: {plan.burst_meetings + plan.background_meetings} meeting.created events …")
        results["schedule"] = await spawn("schedule", plan_path, work_dir)
        restarts = []
        for attempt in range(args.restarts):
            say(f"restart {attempt + 1}/{args.restarts} …")
            restarts.append(await spawn("restart", plan_path, work_dir))
        results["restart"] = restarts
        if args.burst and not args.no_burst:
            say(f"burst: {args.burst} SMS reminders due from {plan.first_due.isoformat()} (service clock) …")
            results["burst"] = await _run_burst(args, plan_path, work_dir)
    results["finished_at"] = datetime.now(UTC).isoformat()
    return results


async def _run_burst(args: argparse.Namespace, plan_path: Path, work_dir: Path) -> dict[str, Any]:
    from notify_shared.testing.sinks import smtp_sink  # noqa: PLC0415 - parent only

    cpu_before = cpu_seconds()
    with smtp_sink() as smtp, _stamped_sms_sink() as (sms_url, stamped):
        child = await spawn(
            "burst",
            plan_path,
            work_dir,
            "--sms-url",
            sms_url,
            "--smtp-port",
            str(smtp.port),
            "--lead",
            str(args.lead),
            "--wait",
            str(args.wait),
        )
        arrivals = {item["reference"]: at for item, at in zip(stamped, stamped.arrivals, strict=True)}
        emails = len(smtp.received)
    figures = burst_figures(child, arrivals)
    figures |= {"emails_received": emails, "sink_process_cpu_seconds": cpu_seconds() - cpu_before}
    return figures


def say(text: str) -> None:
    print(f"[reminders-bench] {text}", file=sys.stderr, flush=True)


def print_summary(results: dict[str, Any]) -> None:
    from rich.console import Console  # noqa: PLC0415 - parent only
    from rich.table import Table  # noqa: PLC0415

    plan, schedule = results["plan"], results["schedule"]
    table = Table(title=f"reminders benchmark — {plan['database']}, {results['machine']['cpus']} CPUs")
    table.add_column("phase")
    table.add_column("figure")
    table.add_column("value", justify="right")
    pending = schedule["states"].get("pending", 0)
    table.add_row("schedule", "meeting.created events → pending reminders", f"{schedule['events']:,} → {pending:,}")
    rates = f"{schedule['events_per_second']:.1f} events/s · {schedule['reminders_per_second']:,.0f} reminders/s"
    table.add_row("", "time · throughput", f"{schedule['seconds']:.1f} s · {rates}")
    per_event = schedule["per_event_ms"]
    table.add_row("", "per event (50 guardians) p50 / p99", f"{per_event['p50']:.1f} / {per_event['p99']:.1f} ms")
    table.add_row("", "peak RSS", f"{schedule['peak_rss_mib']:.0f} MiB")
    for number, restart in enumerate(results["restart"], start=1):
        table.add_row(
            "restart" if number == 1 else "",
            f"#{number}: open + arm (armed for {restart['armed_for']})",
            f"{restart['open_seconds'] * 1000:.0f} + {restart['arm_seconds'] * 1000:.0f}"
            f" = {restart['seconds'] * 1000:.0f} ms",
        )
    first = results["restart"][0]
    from_start = " / ".join(f"{restart['process_start_to_armed_seconds']:.2f}" for restart in results["restart"])
    table.add_row("", "from process start (interpreter, imports, open, arm)", f"{from_start} s")
    table.add_row(
        "",
        "RSS after import → when armed (peak)",
        f"{first['rss_after_import_mib']:.0f} → {first['rss_when_armed_mib']:.0f} ({first['peak_rss_mib']:.0f}) MiB",
    )
    burst = results.get("burst")
    if burst:
        table.add_row(
            "burst",
            "sent / due in the window",
            f"{burst['sent']:,} / {burst['due_in_window']:,} {burst['not_sent'] or ''}",
        )
        for label, key in (
            ("lateness to sent status", "lateness_to_status_seconds"),
            ("lateness to SMS sink", "lateness_to_sms_sink_seconds"),
        ):
            figures = burst.get(key)
            if figures:
                table.add_row(
                    "",
                    f"{label} p50 / p95 / p99 / max",
                    " / ".join(f"{figures[name]:.2f}" for name in ("p50", "p95", "p99", "max")) + " s",
                )
        if "throughput_per_second" in burst:
            table.add_row(
                "",
                "sent per second (first to last) · drained after last due",
                f"{burst['throughput_per_second']:.0f}/s · {burst['drained_after_last_due_seconds']:.1f} s",
            )
        table.add_row(
            "", "service CPU · sink CPU", f"{burst['cpu_seconds']:.0f} s · {burst['sink_process_cpu_seconds']:.0f} s"
        )
        table.add_row("", "peak RSS", f"{burst['peak_rss_mib']:.0f} MiB")
    Console(width=120).print(table)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        run_child(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reminders", type=int, default=100_000, help="pending reminders to schedule (default 100000)")
    parser.add_argument("--burst", type=int, default=10_000, help="of which SMS reminders due in one minute (10000)")
    parser.add_argument("--burst-spread", type=int, default=60, help="seconds the burst's due times spread over (60)")
    parser.add_argument("--database-url", help="a PostgreSQL server (postgresql+asyncpg://…); default: a SQLite file")
    parser.add_argument("--restarts", type=int, default=3, help="restarts to measure (3)")
    parser.add_argument("--no-burst", action="store_true", help="schedule and restart only")
    parser.add_argument(
        "--lead", type=float, default=10.0, help="seconds between starting the alarm and the burst (10)"
    )
    parser.add_argument("--wait", type=float, default=480.0, help="seconds to wait after the burst minute (480)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir: SQLite file, logs, outbox")
    parser.add_argument("--json", type=Path, help="where to write all figures (default: a file in the temp folder)")
    args = parser.parse_args(argv)
    unit = 2 * PER_MEETING
    if args.burst % PER_MEETING or (args.reminders - args.burst) % unit or args.burst > args.reminders:
        parser.error(f"--burst must be a multiple of {PER_MEETING}, and --reminders minus --burst a multiple of {unit}")
    if args.keep:
        work = Path(tempfile.mkdtemp(prefix="reminders-bench-"))
        say(f"work dir (kept): {work}")
        results = asyncio.run(run_benchmark(args, work))
    else:
        with tempfile.TemporaryDirectory(prefix="reminders-bench-") as temporary:
            results = asyncio.run(run_benchmark(args, Path(temporary)))
    results["command"] = " ".join(["uv run python bench/reminders_bench.py", *argv])
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.json or Path(tempfile.gettempdir()) / f"reminders-bench-{stamp}.json"
    out.write_text(json.dumps(results, indent=2))
    print_summary(results)
    say(f"all figures: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
