"""Benchmark of the digest service: one weekly digest run for many guardians, its time and its peak memory.

    uv run python bench/digest_bench.py                        # 100,000 guardians × 5 messages, SQLite
    uv run python bench/digest_bench.py --guardians 10000      # a tenth: peak RSS should be about the same
    uv run python bench/digest_bench.py --guardians 10000 --batch-size 1000   # RSS grows with the batch instead
    uv run python bench/digest_bench.py --database-url postgresql+asyncpg://postgres@127.0.0.1:55492/notify
    uv run python bench/digest_bench.py --replicas 2 --database-url postgresql+asyncpg://postgres@127.0.0.1:55492/notify

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

With `--replicas N` (PostgreSQL), N digest processes start together on the same database, each a replica with
an instance id of its own, as N instances of the service would: they share the run through their claims, and the
sink checks that each guardian still gets exactly one digest.

This script is the parent: it starts the phases (`digest_bench_service.py`), hosts the SMTP sink and prints the
figures; the plan they share is `digest_bench_plan.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from digest_bench_plan import MAX_ITEMS, MESSAGES, WEEKLY_SLOT, Plan  # bench/, on the path when a script here runs
from machine_info import machine

SERVICE_SCRIPT = Path(__file__).with_name("digest_bench_service.py")
CHILD_TIMEOUT_SECONDS = 3600.0

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


def cpu_seconds() -> float:
    """CPU time of this process (the parent, which hosts the SMTP sink)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def spawn(phase: str, plan_path: Path, work_dir: Path, *extra: str) -> dict[str, Any]:
    """Run one phase in a fresh interpreter; its log goes to a file in the work dir."""
    out = work_dir / f"{phase}-{time.monotonic_ns()}.json"
    log = out.with_suffix(".log")
    spawned = time.perf_counter()
    with log.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SERVICE_SCRIPT),
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
            extra += ["--profile"] if args.profile else []
            started = time.perf_counter()
            replicas = await asyncio.gather(
                *(
                    spawn("digest", plan_path, work_dir, *extra, "--instance", f"bench-replica-{number}")
                    for number in range(1, args.replicas + 1)
                )
            )
            wall = time.perf_counter() - started
        digest = replicas[0] if len(replicas) == 1 else combined(replicas, wall)
        digest["sink_process_cpu_seconds"] = cpu_seconds() - cpu_before
        digest["delivery"] = delivery_check(plan, handler)
        results["digest"] = digest
    results["finished_at"] = datetime.now(UTC).isoformat()
    return results


def combined(replicas: Sequence[dict[str, Any]], wall_seconds: float) -> dict[str, Any]:
    """The figures of several replicas' runs as one: what they sent together, each one's own figures kept."""
    statuses: dict[str, int] = {}
    for replica in replicas:
        for status, count in replica["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    steps: dict[str, dict[str, float]] = {}
    for replica in replicas:
        for label, figures in replica["steps"].items():
            total = steps.setdefault(label, {"calls": 0, "total_seconds": 0.0, "max_ms": 0.0})
            total["calls"] += figures["calls"]
            total["total_seconds"] += figures["total_seconds"]
            total["max_ms"] = max(total["max_ms"], figures["max_ms"])
    for figures in steps.values():
        figures["mean_ms"] = figures["total_seconds"] / figures["calls"] * 1000 if figures["calls"] else 0.0
    first = replicas[0]
    return {
        "replicas": [
            {key: replica[key] for key in ("seconds", "cpu_seconds", "statuses", "digests_per_second", "peak_rss_mib")}
            for replica in replicas
        ],
        "complete": all(replica["complete"] for replica in replicas),
        "statuses": statuses,
        "seconds": wall_seconds,
        "digests_per_second": statuses.get("sent", 0) / wall_seconds,
        "cpu_seconds": sum(replica["cpu_seconds"] for replica in replicas),
        "peak_rss_mib": max(replica["peak_rss_mib"] for replica in replicas),
        "max_sampled_rss_mib": max(replica["max_sampled_rss_mib"] for replica in replicas),
        "rss_after_import_mib": first["rss_after_import_mib"],
        "rss_after_open_mib": first["rss_after_open_mib"],
        "rss_at_milestones": {},
        "steps": steps,
    }


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
    for number, replica in enumerate(digest.get("replicas", []), start=1):
        table.add_row(
            "",
            f"replica {number}: sent · time · digests/s · peak RSS",
            f"{replica['statuses'].get('sent', 0):,} · {replica['seconds']:.1f} s · "
            f"{replica['digests_per_second']:.1f}/s · {replica['peak_rss_mib']:.0f} MiB",
        )
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
    parser.add_argument(
        "--replicas", type=int, default=1, help="digest processes sharing the run (1; more need --database-url)"
    )
    parser.add_argument("--profile", action="store_true", help="run the digest phase under cProfile (slows it down)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir: SQLite file, logs, outbox")
    parser.add_argument("--json", type=Path, help="where to write all figures (default: a file in the temp folder)")
    args = parser.parse_args(argv)
    if args.guardians % args.per_message or args.per_school % args.per_message:
        parser.error("--guardians and --per-school must be multiples of --per-message")
    if not 1 <= args.batch_size <= 10_000 or not 1 <= args.items <= MAX_ITEMS:
        parser.error(f"--batch-size must be 1 to 10000 (as DIGEST_BATCH_SIZE) and --items 1 to {MAX_ITEMS}")
    if args.replicas < 1 or (args.replicas > 1 and not args.database_url):
        parser.error("--replicas must be at least 1, and more than one need a PostgreSQL --database-url")
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
