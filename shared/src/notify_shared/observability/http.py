"""`/healthz`, `/readyz` and `/metrics`: the HTTP routes every service serves next to its consumers.

They are ASGI routes of FastStream's `AsgiFastStream`, served by uvicorn under `faststream run`; left out of the
AsyncAPI documents (`include_in_schema=False`), which describe the Kafka contract only.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from faststream.asgi import AsgiResponse, get
from faststream.asgi.types import ASGIApp, Scope
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.ext.asyncio import AsyncEngine

from notify_shared.observability.metrics import ServiceMetrics

logger = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]

CHECK_TIMEOUT_SECONDS = 3.0


def database_check(engine: AsyncEngine) -> Check:
    """True when `SELECT 1` succeeds through `engine`."""

    async def select_one() -> bool:
        async with engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
        return True

    return select_one


class Readiness:
    """Named checks that must all pass for `/readyz`; the database registers itself once the ledger is open."""

    def __init__(self, broker: KafkaBroker, *, timeout: float = CHECK_TIMEOUT_SECONDS) -> None:
        self._timeout = timeout
        self._checks: dict[str, Check] = {"kafka": lambda: broker.ping(timeout)}
        self._required = ["kafka", "database"]

    def add_check(self, name: str, check: Check) -> None:
        self._checks[name] = check

    def remove_check(self, name: str) -> None:
        self._checks.pop(name, None)

    async def failures(self) -> dict[str, str]:
        """What is not ready, by check name, with a short cause (never a connection string)."""

        async def run(name: str) -> tuple[str, str | None]:
            check = self._checks.get(name)
            if check is None:
                return name, "not connected"
            try:
                async with asyncio.timeout(self._timeout):
                    return name, None if await check() else "unreachable"
            except TimeoutError:
                return name, "timeout"
            except Exception as error:
                logger.warning("readiness check %s failed: %s", name, type(error).__name__)
                return name, f"unreachable ({type(error).__name__})"

        names = list(dict.fromkeys([*self._required, *self._checks]))
        results = await asyncio.gather(*(run(name) for name in names))
        return {name: cause for name, cause in results if cause is not None}


def health_routes(*, readiness: Readiness, metrics: ServiceMetrics) -> list[tuple[str, ASGIApp]]:
    """The three routes, for `AsgiFastStream(asgi_routes=...)`."""

    @get(include_in_schema=False)
    async def healthz(scope: Scope) -> AsgiResponse:
        return AsgiResponse(b"ok\n", 200, {"Content-Type": "text/plain; charset=utf-8"})

    @get(include_in_schema=False)
    async def readyz(scope: Scope) -> AsgiResponse:
        failures = await readiness.failures()
        body = {"status": "not ready", "failed": failures} if failures else {"status": "ready"}
        return AsgiResponse(json.dumps(body).encode(), 503 if failures else 200, {"Content-Type": "application/json"})

    @get(include_in_schema=False)
    async def metrics_route(scope: Scope) -> AsgiResponse:
        return AsgiResponse(await metrics.render(), 200, {"Content-Type": CONTENT_TYPE_LATEST})

    return [("/healthz", healthz), ("/readyz", readyz), ("/metrics", metrics_route)]
