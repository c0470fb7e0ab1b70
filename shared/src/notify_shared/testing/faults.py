"""Fault injection for the reliability tests: sinks that fail on purpose, and services run as real processes.

The sinks stand in for the parents' providers. They count what they accept by the message's own key (an SMTP
email's Message-ID, the Idempotency-Key of an SMS or email API request), keep no text, and can be taken down, made
flaky, or slowed. A `ServiceProcess` is a service started with `faststream run` in a child process, so a test can
kill -9 it, SIGTERM it and start it again, exactly as an orchestrator would.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class Acceptances:
    """How many times each message key was accepted, across restarts of the sink."""

    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accept(self, key: str) -> None:
        with self.lock:
            self.counts[key] += 1

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.counts)

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())


class FaultySmtpSink:
    """An SMTP server on a fixed loopback port that can go down (connections refused) and come back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.accepted = Acceptances()
        self._controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        content: bytes = envelope.original_content or envelope.content
        found = _MESSAGE_ID.search(content)
        self.accepted.accept(found.group(1).decode("ascii", "replace") if found else "<no Message-ID>")
        return "250 OK"

    def up(self) -> None:
        if self._controller is None:
            self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
            self._controller.start()

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def is_up(self) -> bool:
        return self._controller is not None


class FaultyWebhookSink:
    """A JSON webhook (the SMS webhook, or the email API) that fails a share of requests with 500, 429 or a timeout.

    A failed request is not delivered. Accepted messages are counted by their Idempotency-Key; like a provider that
    honours the key (our webhook contract), a repeated key is answered 200 and not delivered a second time.
    """

    def __init__(
        self,
        *,
        path: str = "/sms",
        failure_rate: float = 0.0,
        fault_kinds: tuple[str, ...] = ("500", "429", "timeout"),
        hang_seconds: float = 2.0,
        seed: int = 20261127,
    ) -> None:
        self.failure_rate = failure_rate
        self.fault_kinds = fault_kinds
        self.accepted = Acceptances()
        self.failures: Counter[str] = Counter()
        self._hang_seconds = hang_seconds
        self._random = random.Random(seed)  # noqa: S311 - which request fails, not a secret
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self.replays = 0
        """Requests repeating an Idempotency-Key already accepted (a resend after a crash), not sent again."""
        self._id_prefix = path.strip("/")
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                fault = sink._draw()
                if fault == "timeout":
                    time.sleep(sink._hang_seconds)  # the client has given up by now
                    self._answer(503, {})
                elif fault == "429":
                    self._answer(429, {"error": "slow down"}, {"Retry-After": "0"})
                elif fault in ("500", "503"):
                    self._answer(int(fault), {"error": "unavailable"})
                else:
                    # Our webhook contract: a repeated Idempotency-Key is answered as before and not sent again.
                    key = self.headers.get("Idempotency-Key", "<no key>")
                    sink.accept_once(key)
                    self._answer(200, {"id": f"{sink._id_prefix}-{key}"})

            def _answer(self, status: int, body: Mapping[str, str], headers: Mapping[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client timed out and went away, as the fault intended

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def accept_once(self, key: str) -> None:
        with self._lock:
            if key in self._seen:
                self.replays += 1
                return
            self._seen.add(key)
        self.accepted.accept(key)

    def _draw(self) -> str | None:
        with self._lock:
            if self._random.random() >= self.failure_rate:
                return None
            fault = self._random.choice(self.fault_kinds)
            self.failures[fault] += 1
            return fault

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class ServiceProcess:
    """One service instance in a child process: `faststream run <app> --factory` with the given environment."""

    def __init__(self, app: str, env: Mapping[str, str], log_path: Path) -> None:
        self.app = app
        self.http_port = free_port()
        self.admin_port = free_port()
        self._env = {
            **os.environ,
            **env,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.http_port),
            "ADMIN_PORT": str(self.admin_port),
        }
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        executable = shutil.which("faststream", path=str(Path(sys.executable).parent)) or "faststream"
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own service, fixed arguments
                [executable, "run", self.app, "--factory"], env=self._env, stdout=log, stderr=subprocess.STDOUT
            )

    def ready(self) -> bool:
        """Whether /readyz answers 200: Kafka and the database are reachable from the service."""
        try:
            return httpx.get(f"http://127.0.0.1:{self.admin_port}/readyz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """kill -9: no handler finishes, nothing is flushed."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=30)
            self.kills += 1
            self._process = None

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, as an orchestrator stops a pod; returns the exit code."""
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)
        code = self._process.wait(timeout=timeout)
        self._process = None
        return code

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""


class OwnKafkaBroker:
    """A broker of one test's own (deploy/kafka/local-kafka in its own state dir and ports), so the test can stop
    and restart it without disturbing any other test."""

    def __init__(self, state_dir: Path, repo_root: Path) -> None:
        self._script = repo_root / "deploy" / "kafka" / "local-kafka"
        self._env = {
            "KAFKA_STATE_DIR": str(state_dir),
            "KAFKA_PORT": str(free_port()),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
        }
        self.bootstrap = ""

    def command(self, action: str) -> str:
        """Run `local-kafka <action>`; returns its last line (the bootstrap address for `start`)."""
        done = subprocess.run(  # noqa: S603 - the project's own script, fixed arguments
            [str(self._script), action], env={**os.environ, **self._env}, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"local-kafka {action} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        lines = done.stdout.strip().splitlines()
        return lines[-1] if lines else ""

    def start(self) -> str:
        self.bootstrap = self.command("start")
        return self.bootstrap

    def stop(self) -> None:
        self.command("stop")


class HungSqliteDatabase:
    """Another process holding a SQLite database's write lock, as a stuck migration or backup would: every write
    of the service waits through its busy timeout and fails, so its handler is held in the middle of an event."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None

    def hang(self) -> None:
        # autocommit mode (isolation_level=None), so BEGIN IMMEDIATE is ours to issue and takes the write lock now.
        self._connection = sqlite3.connect(self._path, timeout=60, isolation_level=None, check_same_thread=False)
        self._connection.execute("BEGIN IMMEDIATE")

    def recover(self) -> None:
        if self._connection is not None:
            self._connection.execute("ROLLBACK")
            self._connection.close()
            self._connection = None
