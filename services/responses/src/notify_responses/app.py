"""The responses service: `notify-responses` serves this app with uvicorn (see `notify_responses.server`).

Parents open `/r/<token>` from their invitation and answer; each answer is stored and published as
`meeting.rsvp` through an outbox. The service learns meetings and invited guardians from meeting.created /
updated / cancelled. `/healthz`, `/readyz` and `/metrics` are the same as every other service's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from notify_responses import pages
from notify_responses.runtime import Runtime
from notify_responses.service import Clock, LinkState
from notify_responses.settings import ResponsesSettings
from notify_responses.sms_webhook import router as sms_router
from notify_responses.talks_web import router as talks_router
from notify_responses.web import page_timing, router
from notify_responses.web_requests import PAGE_HEADERS, SECURITY_HEADERS
from notify_shared.rendering.languages import DEFAULT_LANGUAGE


def create_app(settings: ResponsesSettings, *, clock: Clock | None = None) -> FastAPI:
    """The app, ready for uvicorn: its lifespan opens the database, Kafka and the relay, and closes them."""
    runtime = Runtime(settings, clock=clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="notify: responses", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.runtime = runtime
    app.include_router(router)
    app.include_router(sms_router)
    app.include_router(talks_router)
    app.add_exception_handler(StarletteHTTPException, _friendly_not_found)
    app.add_exception_handler(PoolTimeoutError, _busy)
    app.middleware("http")(page_timing(runtime))
    _add_operations_routes(app, runtime)
    return app


async def _friendly_not_found(request: Request, error: Exception) -> Response:
    # Parents who mistype or cut a link get the same page as for any other link that leads nowhere.
    status = error.status_code if isinstance(error, StarletteHTTPException) else 500
    if status == 404:
        return HTMLResponse(pages.problem_page(DEFAULT_LANGUAGE, LinkState.INVALID), 404, headers=PAGE_HEADERS)
    return PlainTextResponse(str(status), status, headers=SECURITY_HEADERS)


async def _busy(request: Request, error: Exception) -> Response:
    # Every database connection stayed taken for the pool's whole timeout (SQLAlchemy's 30 s): far more parents
    # at once than the service can take (docs/benchmarks.md). Nothing was recorded; the parent is asked to come
    # back rather than shown a bare error.
    page = pages.problem_page(DEFAULT_LANGUAGE, "busy")
    return HTMLResponse(page, 503, headers=PAGE_HEADERS | {"Retry-After": "60"})


def _add_operations_routes(app: FastAPI, runtime: Runtime) -> None:
    # The same three routes and answers as every service (notify_shared.observability.http).

    @app.get("/healthz")
    async def healthz() -> Response:
        return PlainTextResponse("ok\n")

    @app.get("/readyz")
    async def readyz() -> Response:
        failures = await runtime.readiness.failures()
        if failures:
            return JSONResponse({"status": "not ready", "failed": failures}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        return Response(await runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)
