"""Several worker processes of one service from one command: the `WORKERS` setting.

With `WORKERS=1` (the default) a service is one process, as it always was. With `WORKERS=N` the command an
operator runs (`faststream run … --factory`, `notify-ingest`, `notify-responses`) becomes a supervisor
(`notify_shared.workers.supervisor`) that binds the public port and `ADMIN_PORT`, then runs the very same
command N times as child processes, one after the other. Each child is a whole service process: its own Kafka
consumer (one member of the service's consumer group), its own database pool, its own event loop on its own
core. The children share the public listening socket, so the kernel hands each connection to one of them; each
also gets a private admin socket on 127.0.0.1, which only the supervisor asks. On `ADMIN_PORT` the supervisor
answers `/healthz`, `/readyz` and `/metrics` for all of them (`notify_shared.workers.admin`).

A child learns that it is a worker, and which sockets are its own, from the `NOTIFY_WORKER` environment variable
the supervisor sets; nothing else about a worker differs from a single process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
from dataclasses import dataclass
from typing import Final

WORKER_ENV: Final = "NOTIFY_WORKER"
"""Set by the supervisor in each child: `index/count/public fd/admin fd/admin port/supervisor pid`."""

_PR_SET_PDEATHSIG: Final = 1


@dataclass(frozen=True)
class WorkerSlot:
    """Which worker this process is, and the listening sockets it inherited from the supervisor."""

    index: int
    count: int
    public_fd: int
    admin_fd: int
    admin_port: int
    """The worker's private admin port on 127.0.0.1, where the supervisor asks for its health and metrics."""
    supervisor_pid: int

    def encode(self) -> str:
        return f"{self.index}/{self.count}/{self.public_fd}/{self.admin_fd}/{self.admin_port}/{self.supervisor_pid}"

    @classmethod
    def decode(cls, text: str) -> WorkerSlot:
        try:
            index, count, public_fd, admin_fd, admin_port, supervisor_pid = (int(part) for part in text.split("/"))
        except ValueError:
            raise SystemExit(
                f"{WORKER_ENV}={text!r} is not a worker slot: the supervisor sets it, not people"
            ) from None
        return cls(index, count, public_fd, admin_fd, admin_port, supervisor_pid)

    def sockets(self) -> list[socket.socket]:
        """The public socket (shared by every worker) and this worker's admin socket, for uvicorn's `serve`."""
        return [socket.socket(fileno=self.public_fd), socket.socket(fileno=self.admin_fd)]


def current_worker() -> WorkerSlot | None:
    """This process's slot when a supervisor started it, else None (a single process, or the supervisor)."""
    text = os.environ.get(WORKER_ENV)
    return WorkerSlot.decode(text) if text else None


def die_with_supervisor(slot: WorkerSlot) -> None:
    """Ask Linux to send this process SIGTERM when its supervisor dies, even by SIGKILL, so that no worker keeps
    consuming behind a supervisor the orchestrator believes gone. Elsewhere this does nothing."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    # The supervisor may have died before the request was in place; then another process is the parent already.
    if os.getppid() != slot.supervisor_pid:
        os.kill(os.getpid(), signal.SIGTERM)


__all__ = ["WORKER_ENV", "WorkerSlot", "current_worker", "die_with_supervisor"]
