"""The supervisor of a service's worker processes (see `notify_shared.workers`).

It starts the workers one after the other, each once the one before answers `/healthz`: a worker's start-up
creates missing tables, and two doing it at once on a fresh database would race. A worker that exits before it
ever answered stops the whole instance with its exit code, so a start-up that cannot succeed (a database that
refuses the login) fails the container as a single process would; one that exits later is started again, after
1 s, doubling to 30 s while it keeps failing. On SIGTERM or SIGINT every worker gets one SIGTERM and drains as a
single process does (events in progress finish, offsets are committed); the supervisor exits once all have, with
0 when every worker exited cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import httpx
import uvicorn

from notify_shared.workers import WORKER_ENV, WorkerSlot
from notify_shared.workers.admin import SupervisorMetrics, WorkersAdmin, WorkerView

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 180.0
"""Longest a worker may take to answer `/healthz` before the next one is started anyway."""
STOP_TIMEOUT_SECONDS = 90.0
"""Longest the workers get to drain after SIGTERM before they are killed; longer than a single process needs
(FastStream's 30 s for the handler in flight, the invitations service's 20 s for meetings in progress)."""
RESTART_DELAY_SECONDS = (1.0, 30.0)
"""First and longest wait before a worker that exited is started again."""
STEADY_SECONDS = 60.0
"""A worker that ran this long before exiting is restarted after the first delay again."""
POLL_SECONDS = 0.2


class _AdminServer(uvicorn.Server):
    """uvicorn serving the admin port, without signal handlers of its own: the supervisor closes it last."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class _Worker:
    index: int
    admin_socket: socket.socket
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_exits: int = 0
    restart_at: float | None = None
    answered: bool = False

    @property
    def admin_port(self) -> int:
        port: int = self.admin_socket.getsockname()[1]
        return port

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Runs `command` (by default the one that started this process) as `count` workers."""

    def __init__(
        self,
        *,
        service: str,
        count: int,
        public: socket.socket,
        admin: socket.socket,
        command: Sequence[str] | None = None,
    ) -> None:
        self._service = service
        self._public = public
        self._admin = admin
        self._command = list(command or sys.orig_argv)
        self._workers = [_Worker(index, _loopback_listener()) for index in range(count)]
        self._metrics = SupervisorMetrics(service)
        self._metrics.configured.labels(service).set(count)
        self._admin_app = WorkersAdmin(self._views, self._metrics)
        self._stopping = asyncio.Event()

    def _views(self) -> list[WorkerView]:
        # A worker counts once it has answered since it was started: until then its private socket accepts
        # connections (the supervisor opened it) that nobody answers yet.
        return [
            WorkerView(worker.index, worker.admin_port, worker.running and worker.answered) for worker in self._workers
        ]

    async def run(self) -> int:
        """Start the workers, keep them running until SIGTERM or SIGINT, stop them; the exit code."""
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, self._stop_requested, number)
        config = uvicorn.Config(self._admin_app, log_config=None, access_log=False, server_header=False)
        admin_server = _AdminServer(config)
        serving = asyncio.create_task(admin_server.serve(sockets=[self._admin]))
        logger.info(
            "%s: %d worker processes on public port %s, admin port %s",
            self._service,
            len(self._workers),
            self._public.getsockname()[1],
            self._admin.getsockname()[1],
        )
        code = 0
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                code = await self._start_all(client)
                if code == 0:
                    await self._keep_running(client)
        finally:
            code = await self._stop_all() or code
            admin_server.should_exit = True
            await serving
            await self._admin_app.aclose()
            for number in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(number)
            for worker in self._workers:
                worker.admin_socket.close()
        logger.info("%s: every worker stopped (exit code %d)", self._service, code)
        return code

    def _stop_requested(self, number: int) -> None:
        if not self._stopping.is_set():
            logger.info("%s: %s received, stopping the workers", self._service, signal.Signals(number).name)
        self._stopping.set()

    def _spawn(self, worker: _Worker) -> None:
        slot = WorkerSlot(
            index=worker.index,
            count=len(self._workers),
            public_fd=self._public.fileno(),
            admin_fd=worker.admin_socket.fileno(),
            admin_port=worker.admin_port,
            supervisor_pid=os.getpid(),
        )
        # A session of its own: Ctrl-C in a terminal reaches the supervisor only, which then sends each worker
        # one SIGTERM (uvicorn takes a second signal as "quit without draining"). Started from the event loop's
        # thread, which lives as long as the supervisor: Linux sends the worker's parent-death signal when the
        # thread that started it ends, not the process (notify_shared.workers.die_with_supervisor).
        worker.process = subprocess.Popen(  # noqa: S603 - the command this process was started with
            self._command,
            env=os.environ | {WORKER_ENV: slot.encode()},
            pass_fds=(slot.public_fd, slot.admin_fd),
            start_new_session=True,
        )
        worker.started_at = time.monotonic()
        worker.restart_at = None
        worker.answered = False
        logger.info("%s: worker %d started (pid %d)", self._service, worker.index, worker.process.pid)

    async def _start_all(self, client: httpx.AsyncClient) -> int:
        """Start each worker once the one before answers; a worker's exit code if one exits before answering."""
        for worker in self._workers:
            if self._stopping.is_set():
                return 0
            self._spawn(worker)
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while not worker.answered and time.monotonic() < deadline and not self._stopping.is_set():
                assert worker.process is not None
                if worker.process.poll() is not None:
                    code = worker.process.returncode
                    logger.error(
                        "%s: worker %d exited with code %s during start-up; stopping", self._service, worker.index, code
                    )
                    return code or 1
                await self._ask_health(client, worker)
                if not worker.answered:
                    await self._pause(POLL_SECONDS)
            if not worker.answered and not self._stopping.is_set():
                logger.warning(
                    "%s: worker %d did not answer within %.0f s; starting the next",
                    self._service,
                    worker.index,
                    START_TIMEOUT_SECONDS,
                )
        return 0

    async def _ask_health(self, client: httpx.AsyncClient, worker: _Worker) -> None:
        with contextlib.suppress(httpx.HTTPError):
            response = await client.get(f"http://127.0.0.1:{worker.admin_port}/healthz")
            worker.answered = response.status_code == 200

    async def _keep_running(self, client: httpx.AsyncClient) -> None:
        while not self._stopping.is_set():
            now = time.monotonic()
            for worker in self._workers:
                if worker.process is None:
                    continue
                if worker.running and not worker.answered:
                    await self._ask_health(client, worker)  # a restarted worker, until it answers
                elif worker.restart_at is None and worker.process.poll() is not None:
                    ran = now - worker.started_at
                    worker.quick_exits = 0 if ran >= STEADY_SECONDS else worker.quick_exits + 1
                    first, longest = RESTART_DELAY_SECONDS
                    delay = min(first * 2 ** max(worker.quick_exits - 1, 0), longest)
                    worker.restart_at = now + delay
                    logger.error(
                        "%s: worker %d (pid %d) exited with code %s after %.0f s; starting it again in %.0f s",
                        self._service,
                        worker.index,
                        worker.process.pid,
                        worker.process.returncode,
                        ran,
                        delay,
                    )
                elif worker.restart_at is not None and now >= worker.restart_at:
                    self._metrics.restarts.labels(self._service).inc()
                    self._spawn(worker)
            await self._pause(POLL_SECONDS)

    async def _stop_all(self) -> int:
        """SIGTERM to every running worker, wait for all (killing any still running after the timeout)."""
        running = [worker for worker in self._workers if worker.running]
        for worker in running:
            assert worker.process is not None
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        await asyncio.gather(*(_wait_for_exit(worker, deadline) for worker in running))
        code = 0
        for worker in running:
            assert worker.process is not None
            if worker.process.poll() is None:
                logger.error(
                    "%s: worker %d still running after %.0f s; killing it",
                    self._service,
                    worker.index,
                    STOP_TIMEOUT_SECONDS,
                )
                worker.process.kill()
                worker.process.wait()
            # uvicorn ends a graceful stop by raising the SIGTERM it caught again, so -15 is a clean exit too.
            if worker.process.returncode not in (0, -signal.SIGTERM):
                logger.warning(
                    "%s: worker %d exited with code %s", self._service, worker.index, worker.process.returncode
                )
                code = code or 1
        return code

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


async def _wait_for_exit(worker: _Worker, deadline: float) -> None:
    assert worker.process is not None
    with contextlib.suppress(subprocess.TimeoutExpired):
        await asyncio.to_thread(worker.process.wait, max(deadline - time.monotonic(), 0.0))


def _loopback_listener() -> socket.socket:
    """A worker's private admin socket: 127.0.0.1 on a port the system picks, listening before the worker starts."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.set_inheritable(True)
    return listener
