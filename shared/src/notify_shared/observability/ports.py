"""Serving one ASGI app on two ports: the public one and the admin one (`ADMIN_PORT`).

Metrics and readiness say how many notifications went out and whether the database answers; providers and admin
systems, who reach the public port through the ingress, have no business with them. One uvicorn server listens
on both sockets (one lifespan, one set of signal handlers) and each request is routed by the port it came in on,
which uvicorn gives as `scope["server"]`:

- on the admin port only `/metrics`, `/readyz` and `/healthz`;
- on the public port everything but `/metrics` and `/readyz`.

Anything else is answered `404 {"error": "not found"}`. The Kubernetes NetworkPolicy in deploy/k8s lets only
Prometheus reach the admin port; the kubelet's probes are not subject to it.
"""

from __future__ import annotations

import json
import socket
from typing import Final

import uvicorn
from faststream.asgi import AsgiResponse
from faststream.asgi.types import ASGIApp, Receive, Scope, Send

ADMIN_PATHS: Final = frozenset({"/metrics", "/readyz", "/healthz"})
"""Served on the admin port."""
ADMIN_ONLY_PATHS: Final = frozenset({"/metrics", "/readyz"})
"""Refused on the public port."""


def allowed_on(scope: Scope, admin_port: int) -> bool:
    """Whether the request's path is served on the port it came in on."""
    server = scope.get("server")
    on_admin_port = server is not None and server[1] == admin_port
    path = scope["path"]
    return path in ADMIN_PATHS if on_admin_port else path not in ADMIN_ONLY_PATHS


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """A JSON 404 that names the path (cut short), for a person who got a URL or a port wrong."""
    body = json.dumps({"error": "not found", "path": scope["path"][:200]}).encode()
    await AsgiResponse(body, 404, {"Content-Type": "application/json"})(scope, receive, send)


class SplitByPort:
    """Wraps an ASGI app (the ingest's FastAPI app) so that it serves each path only on its port."""

    def __init__(self, app: ASGIApp, *, admin_port: int) -> None:
        self._app = app
        self._admin_port = admin_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not allowed_on(scope, self._admin_port):
            await not_found(scope, receive, send)
            return
        await self._app(scope, receive, send)


def bind_public_and_admin(public: uvicorn.Config, admin_port: int) -> list[socket.socket]:
    """The two listening sockets for `uvicorn.Server(public).serve(sockets=...)`: `public`'s host and port, and the
    same host on `admin_port`. Stops with a message naming ADMIN_PORT when the two ports are the same."""
    if public.port == admin_port:
        raise SystemExit(f"Invalid configuration:\n  ADMIN_PORT: must differ from the HTTP port {public.port}")
    admin = uvicorn.Config(app=public.app, host=public.host, port=admin_port)
    return [public.bind_socket(), admin.bind_socket()]
