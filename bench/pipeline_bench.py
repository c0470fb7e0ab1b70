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
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from machine_info import machine  # bench/, on the path when a script here runs
from pipeline_events import CHANNELS
from pipeline_parts import Broker
from pipeline_phases import Options, drain, paced, sink_ceilings
from pipeline_processes import Children, calibration_ms, console, own_figures, python_tool, say
from pipeline_report import DEFINITIONS, judge, print_summary
from pipeline_waiting import progress_bars


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
                # With --workers 1,2 the drains of one N run back to back, so both meet the same machine.
                for workers in options.workers:
                    say(
                        f"N={size:,}, {workers} worker process(es): {size * per_event:,} notifications "
                        f"(load average {os.getloadavg()[0]:.2f})"
                    )
                    results["runs"].append(
                        await drain(
                            options=options,
                            children=children,
                            broker=broker,
                            work_dir=work_dir,
                            size=size,
                            workers=workers,
                            progress=progress,
                        )
                    )
                    run = results["runs"][-1]
                    say(
                        f"N={size:,}, {workers} worker process(es): "
                        f"{run['pipeline'].get('notifications_per_second', 0):,.0f} notifications/s, "
                        f"{run['wait']['outcome']}"
                    )
            if options.paced_seconds > 0 and options.replicas == 1 and options.workers == [1]:
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
    parser.add_argument(
        "--partitions", type=int, help="partitions of the event topics (3; 6 with --replicas or --workers above 1)"
    )
    parser.add_argument("--replicas", type=int, default=1, help="service instances in one consumer group (1)")
    parser.add_argument(
        "--workers",
        default="1",
        help="worker processes per instance (WORKERS), e.g. 1,2: one drain each per N, side by side (1); above 1 "
        "needs --database-url, and skips the paced run",
    )
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
    workers = [int(count) for count in args.workers.split(",")]
    if any(size < 1 for size in sizes) or args.guardians < 1 or args.replicas < 1 or min(workers) < 1:
        parser.error("sizes, --guardians, --replicas and --workers must be positive")
    if max(args.replicas, *workers) > 1 and not (args.database_url or "").startswith("postgresql"):
        parser.error(
            "--replicas or --workers above 1 needs --database-url postgresql+asyncpg://… (SQLite is one process's "
            "database)"
        )
    options = Options(
        sizes=sizes,
        guardians=args.guardians,
        partitions=args.partitions or (6 if max(args.replicas, *workers) > 1 else 3),
        replicas=args.replicas,
        workers=workers,
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
