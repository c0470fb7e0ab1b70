"""The answer page's routes, as thin as the Kafka handler: read the request, call the service, render.

`GET /r/<token>` shows and never changes anything (mail scanners open every link before the parent does);
`POST /r/<token>` records, only with the form's anti-forgery value. The token is a credential: nothing here
logs it or puts it in a metric label, and the server runs without uvicorn's access log (`server.py`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from importlib.resources import files
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from notify_responses import pages
from notify_responses.runtime import Runtime
from notify_responses.service import LinkCheck, LinkState, RecordResult
from notify_responses.web_requests import (
    MAX_FORM_FIELDS,
    SECURITY_HEADERS,
    client_address,
    html_page,
    link_key,
    read_body,
    runtime_of,
    same_origin,
)
from notify_shared.contract import AnswerChannel
from notify_shared.rendering.languages import DEFAULT_LANGUAGE

MAX_FORM_BYTES = 16 * 1024
"""A filled-in form is a few kilobytes at most (500 characters of comment, percent-encoded)."""
_STATUS_OF_STATE = {LinkState.INVALID: 404, LinkState.STARTED: 410, LinkState.CANCELLED: 410}

router = APIRouter(include_in_schema=False)


def _too_many(runtime: Runtime, language: str) -> HTMLResponse:
    runtime.metrics.link_rejected("rate_limited")
    response = html_page(pages.problem_page(language, "rate_limited"), 429)
    response.headers["Retry-After"] = "60"
    return response


def _closed(runtime: Runtime, link: LinkCheck) -> HTMLResponse:
    reason = link.rejection.value if link.rejection is not None else _closed_reason(link.state)
    runtime.metrics.link_rejected(reason)
    return html_page(pages.problem_page(link.language, link.state, link.invitation), _STATUS_OF_STATE[link.state])


def _closed_reason(state: LinkState) -> str:
    return "unknown_invitation" if state is LinkState.INVALID else "closed"


@router.get("/r/{token:path}")
async def show_answer_page(token: str, request: Request) -> Response:
    runtime = runtime_of(request)
    if not runtime.client_limit.allow(client_address(request)):
        return _too_many(runtime, DEFAULT_LANGUAGE)
    link = await runtime.service.check(token)
    if link.state is not LinkState.OPEN or link.invitation is None:
        return _closed(runtime, link)
    return html_page(pages.form_page(link.language, link.invitation, proof=runtime.keys.form_proof(token)))


@router.post("/r/{token:path}")
async def record_answer(token: str, request: Request) -> Response:
    runtime = runtime_of(request)
    if not runtime.client_limit.allow(client_address(request)) or not runtime.link_limit.allow(link_key(token)):
        return _too_many(runtime, DEFAULT_LANGUAGE)
    body = await read_body(request, MAX_FORM_BYTES)
    fields = dict(parse_qsl((body or b"").decode("utf-8", "replace"), keep_blank_values=True))
    if body is None or len(fields) > MAX_FORM_FIELDS:
        return html_page(pages.problem_page(DEFAULT_LANGUAGE, LinkState.INVALID), 413)
    if not same_origin(request, runtime.settings.public_url) or not runtime.keys.form_proof_matches(
        token, fields.get("proof")
    ):
        return await _refuse_forgery(runtime, token)
    recorded = await runtime.service.record(token, fields, via=AnswerChannel.WEB)
    link = recorded.link
    if recorded.result is RecordResult.CLOSED or link.invitation is None:
        return _closed(runtime, link)
    if recorded.result is RecordResult.NEEDS_FIXING:
        page = pages.form_page(link.language, link.invitation, proof=runtime.keys.form_proof(token), form=recorded.form)
        return html_page(page, 400)
    answer = link.invitation.answer
    assert answer is not None
    runtime.metrics.answered(answer=answer.answer.value, via=AnswerChannel.WEB.value, result=recorded.result.value)
    return html_page(pages.confirmation_page(link.language, link.invitation))


async def _refuse_forgery(runtime: Runtime, token: str) -> HTMLResponse:
    # A cross-site form, or a post that did not come from the page: nothing is recorded; the parent who really
    # meant to answer sees the form again, with the value it needs.
    link = await runtime.service.check(token)
    if link.state is not LinkState.OPEN or link.invitation is None:
        return _closed(runtime, link)
    runtime.metrics.link_rejected("forgery")
    page = pages.form_page(link.language, link.invitation, proof=runtime.keys.form_proof(token), forgery=True)
    return html_page(page, 403)


@router.get("/static/answer.css")
async def stylesheet() -> Response:
    return Response(
        _STYLESHEET,
        media_type="text/css",
        headers=SECURITY_HEADERS | {"Cache-Control": "public, max-age=3600"},
    )


_STYLESHEET = files("notify_responses").joinpath("static", "answer.css").read_bytes()


def page_timing(runtime: Runtime) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """HTTP middleware: the latency of every answer- and booking-page request, by method and status (never path)."""

    async def timed(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if not request.url.path.startswith(("/r/", "/b/")):
            return await call_next(request)
        started = time.perf_counter()
        response = await call_next(request)
        runtime.metrics.page_served(
            method=request.method, status=response.status_code, seconds=time.perf_counter() - started
        )
        return response

    return timed
