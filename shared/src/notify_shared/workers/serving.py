"""Where a service's HTTP server gets its sockets, so that `WORKERS` works the same for every service.

The FastStream services (`notify_shared.kafka.service_app.ServiceAsgiApp.run`) and the plain uvicorn ones
(`notify-ingest`, `notify-responses`, through `run_server`) ask here: a supervisor is started when `WORKERS` is
above 1 and this process is not a worker already; otherwise the process serves on the sockets it inherited as a
worker, or binds the public port and `ADMIN_PORT` itself as a single process always did.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import uvicorn
from faststream.asgi.types import ASGIApp, Receive, Scope, Send

from notify_shared.observability.ports import SplitByPort, bind_public_and_admin
from notify_shared.settings import ServiceSettings
from notify_shared.workers import current_worker, die_with_supervisor
from notify_shared.workers.supervisor import Supervisor


def supervises(settings: ServiceSettings) -> bool:
    """Whether this process should supervise workers rather than serve."""
    return settings.workers > 1 and current_worker() is None


async def supervise(public: uvicorn.Config, settings: ServiceSettings, *, service: str) -> int:
    """Bind the public port (`public`'s host and port) and `ADMIN_PORT`, run `WORKERS` workers until SIGTERM or
    SIGINT; the exit code."""
    public_socket, admin_socket = bind_public_and_admin(public, settings.admin_port)
    try:
        return await Supervisor(service=service, count=settings.workers, public=public_socket, admin=admin_socket).run()
    finally:
        public_socket.close()
        admin_socket.close()


def listen(public: uvicorn.Config, settings: ServiceSettings) -> tuple[list[socket.socket], int]:
    """The public and admin sockets this process serves, and the port that tells admin requests apart."""
    slot = current_worker()
    if slot is None:
        return bind_public_and_admin(public, settings.admin_port), settings.admin_port
    die_with_supervisor(slot)
    return slot.sockets(), slot.admin_port


def admin_port_here(settings: ServiceSettings) -> int:
    """`ADMIN_PORT`, or in a worker its private admin port."""
    slot = current_worker()
    return settings.admin_port if slot is None else slot.admin_port


async def _never_served(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("the supervisor serves no requests on the public port")  # pragma: no cover


def run_server(build: Callable[[], ASGIApp], settings: ServiceSettings, *, service: str, **options: Any) -> None:
    """Serve the app `build` returns with uvicorn (`options` go to `uvicorn.Config`), on the public port and
    `ADMIN_PORT` (`SplitByPort`), or supervise `WORKERS` processes that each do."""
    if supervises(settings):
        public = uvicorn.Config(_never_served, host=settings.http_host, port=settings.http_port)
        code = asyncio.run(supervise(public, settings, service=service))
        raise SystemExit(code)
    config = uvicorn.Config(
        SplitByPort(build(), admin_port=admin_port_here(settings)),
        host=settings.http_host,
        port=settings.http_port,
        **options,
    )
    sockets, _ = listen(config, settings)
    uvicorn.Server(config).run(sockets=sockets)
