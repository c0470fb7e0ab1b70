"""The parts a pipeline benchmark run starts: a Kafka broker, the delivery sinks and invitations service instances."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pipeline_processes import (
    BENCH,
    REPO,
    Children,
    ProcFigures,
    log_summary,
    python_tool,
    read_proc,
    read_tree,
    thread_cpu,
)
from prometheus_client.parser import text_string_to_metric_families

from notify_shared.testing.faults import OwnKafkaBroker, free_port
from notify_shared.topics import Topics

SERVICE_APP = "notify_invitations.app:create_app"
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
    """One invitations service instance, as deployed: `faststream run … --factory` with its environment; with
    `workers` above 1 that command supervises that many worker processes (WORKERS), counted together here."""

    def __init__(self, children: Children, deployment: Deployment, name: str, *, workers: int = 1) -> None:
        self._children = children
        self.name = name
        self.workers = workers
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
            "WORKERS": str(workers),
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
                    self.ready_figures, _ = read_tree(self.pid)
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
        sent_by_worker: Counter[str] = Counter()
        latency: dict[str, float] = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == "notify_notifications_total":
                    notifications[f"{sample.labels['channel']}:{sample.labels['status']}"] += int(sample.value)
                    if sample.labels["status"] == "sent":
                        sent_by_worker[sample.labels.get("worker", "0")] += int(sample.value)
                elif sample.name in ("notify_delivery_latency_seconds_sum", "notify_delivery_latency_seconds_count"):
                    key = sample.name.rsplit("_", 1)[1]
                    latency[key] = latency.get(key, 0.0) + sample.value
        sent = sum(count for key, count in notifications.items() if key.endswith(":sent"))
        return {
            "notifications_total": dict(notifications),
            "sent": sent,
            "sent_by_worker": dict(sorted(sent_by_worker.items())),
            "mean_latency_seconds": latency.get("sum", 0.0) / latency["count"] if latency.get("count") else None,
        }

    async def stop(self) -> dict[str, Any]:
        """Read /proc, then SIGTERM (a graceful stop, as an orchestrator does) and wait for the exit."""
        end, each = read_tree(self.pid) if self.process else (None, [])
        # The event loop's own share is telling for one process; with workers each has its own loop.
        threads = thread_cpu(self.pid) if self.process and self.workers == 1 else {}
        if end is not None and threads:
            # The process total includes threads that have exited (aiosqlite starts one per connection).
            threads["other_threads_cpu_seconds"] = end.cpu_seconds - threads["main_thread_cpu_seconds"]
        code = self._children.stop(self.process, timeout=60) if self.process else None
        await self._client.aclose()
        log = self.log_text()
        figures: dict[str, Any] = {
            "exit_code": code,
            "shut_down_gracefully": log.count("FastStream app shut down gracefully") == self.workers,
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
                "processes": [asdict(figures) for figures in each],
            }
        return figures
