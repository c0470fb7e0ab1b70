"""The ingest service: `notify-ingest` serves this app with uvicorn (see `notify_ingest.server`).

School admin systems that cannot speak Kafka POST CloudEvents to `/v1/events`; each is validated against the
event contract and published to its topic once per event id. `/healthz`, `/readyz` and `/metrics` are the same
as every other service's (docs/operations.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from notify_ingest.api import event_component_schemas, router
from notify_ingest.runtime import Runtime
from notify_ingest.settings import IngestSettings
from notify_ingest.store import Clock
from notify_shared import LICENSE_SPDX_ID

TITLE = "notify: ingest"
VERSION = "0.1.0"
DESCRIPTION = (
    "HTTP ingest for school admin systems that cannot publish to Kafka themselves. POST one CloudEvent "
    "(structured JSON mode) to `/v1/events` with your school's API key; it is validated against the event "
    "contract and published to Kafka exactly as if you had published it there. Guide: docs/ingest.md. "
    "The event contract: docs/contract.md."
)
# Each school owner runs its own ingest, so there is no one address to name: the first entry is a template a client
# generator fills in with the owner's host, the second the local ingest of docs/ingest.md.
SERVERS: list[dict[str, Any]] = [
    {
        "url": "https://{host}",
        "description": "The ingest as your school owner serves it, behind TLS.",
        "variables": {
            "host": {
                "default": "ingest.example.no",
                "description": "Host name (and port, when not 443) your school owner gave you for the ingest.",
            }
        },
    },
    {
        "url": "http://127.0.0.1:8080",
        "description": "A local ingest, started as docs/ingest.md shows (`HTTP_PORT=8080 uv run notify-ingest`).",
    },
]


def create_app(settings: IngestSettings, *, clock: Clock | None = None) -> FastAPI:
    """The app, ready for uvicorn: its lifespan connects Kafka and the database, and closes them on shutdown."""
    runtime = Runtime(settings, clock=clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = _fastapi(lifespan=lifespan)
    app.state.runtime = runtime
    _add_operations_routes(app)
    return app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the API; it needs no settings (docs/ingest-openapi.json is this, as JSON)."""
    return _fastapi().openapi()


def _fastapi(lifespan: Any = None) -> FastAPI:
    app = FastAPI(
        title=TITLE, version=VERSION, description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.include_router(router)

    def openapi() -> dict[str, Any]:
        # FastAPI's document, plus the event schemas the request body refers to (`openapi_extra` names them
        # by reference only, since the route reads the raw body and validates it like the Kafka consumers do).
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                servers=SERVERS,
                license_info={"name": LICENSE_SPDX_ID, "identifier": LICENSE_SPDX_ID},
            )
            document.setdefault("components", {}).setdefault("schemas", {}).update(event_component_schemas())
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the document
    return app


def _add_operations_routes(app: FastAPI) -> None:
    # The same three routes and answers as every service (notify_shared.observability.http); left out of the
    # OpenAPI document, which is for integrators.
    runtime: Runtime = app.state.runtime

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return PlainTextResponse("ok\n")

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        failures = await runtime.readiness.failures()
        if failures:
            return JSONResponse({"status": "not ready", "failed": failures}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        return Response(await runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)
