"""The booking page's routes, as thin as the answer page's (`notify_responses.web`, whose checks they share):
read the request, call `TalksService`, render.

`GET /b/<token>` shows the free slots and never changes anything (mail scanners open every link); `POST
/b/<token>` books, moves (`action=book`, `slot=<slot id>`) or cancels (`action=cancel`), only with the form's
anti-forgery value. The token is a credential: nothing here logs it or puts it in a metric label.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from notify_responses import talks_pages
from notify_responses.runtime import Runtime
from notify_responses.talks_service import BookingPage, Outcome, PageState
from notify_responses.web_requests import (
    MAX_FORM_FIELDS,
    client_address,
    html_page,
    link_key,
    read_body,
    runtime_of,
    same_origin,
)
from notify_shared.rendering.languages import DEFAULT_LANGUAGE

MAX_FORM_BYTES = 2 * 1024
"""The booking form holds the anti-forgery value, an action and a slot id."""

_STATUS_OF_STATE = {PageState.INVALID: 404, PageState.CLOSED: 410, PageState.NOT_YET_OPEN: 200}
_STATUS_OF_OUTCOME = {Outcome.TAKEN: 409, Outcome.OVERLAP: 409, Outcome.NO_CHOICE: 400}

router = APIRouter(include_in_schema=False)


def _too_many(runtime: Runtime) -> HTMLResponse:
    runtime.metrics.link_rejected("rate_limited")
    response = html_page(talks_pages.problem_page(DEFAULT_LANGUAGE, "rate_limited"), 429)
    response.headers["Retry-After"] = "60"
    return response


def _not_bookable(runtime: Runtime, page: BookingPage) -> HTMLResponse:
    if page.state is not PageState.NOT_YET_OPEN:
        reason = page.rejection.value if page.rejection is not None else "closed"
        runtime.metrics.link_rejected("unknown_invitation" if page.state is PageState.INVALID else reason)
    return html_page(talks_pages.problem_page(page.language, page.state, page.view), _STATUS_OF_STATE[page.state])


@router.get("/b/{token:path}")
async def show_booking_page(token: str, request: Request) -> Response:
    runtime = runtime_of(request)
    if not runtime.client_limit.allow(client_address(request)):
        return _too_many(runtime)
    page = await runtime.talks.page(token)
    if page.state is not PageState.OPEN or page.view is None:
        return _not_bookable(runtime, page)
    return html_page(talks_pages.booking_page(page.language, page.view, proof=runtime.keys.form_proof(token)))


@router.post("/b/{token:path}")
async def book_or_cancel(token: str, request: Request) -> Response:
    runtime = runtime_of(request)
    if not runtime.client_limit.allow(client_address(request)) or not runtime.link_limit.allow(link_key(token)):
        return _too_many(runtime)
    body = await read_body(request, MAX_FORM_BYTES)
    fields = dict(parse_qsl((body or b"").decode("utf-8", "replace"), keep_blank_values=True))
    if body is None or len(fields) > MAX_FORM_FIELDS:
        return html_page(talks_pages.problem_page(DEFAULT_LANGUAGE, PageState.INVALID), 413)
    if not same_origin(request, runtime.settings.public_url) or not runtime.keys.form_proof_matches(
        token, fields.get("proof")
    ):
        return await _refuse_forgery(runtime, token)
    if fields.get("action") == "cancel":
        attempt = await runtime.talks.cancel(token)
    else:
        attempt = await runtime.talks.book(token, fields.get("slot"))
    page = attempt.page
    runtime.metrics.booking_attempted(attempt.outcome.value)
    if attempt.outcome is Outcome.CLOSED or page.view is None or page.state is not PageState.OPEN:
        return _not_bookable(runtime, page)
    if attempt.outcome in _STATUS_OF_OUTCOME:
        proof = runtime.keys.form_proof(token)
        shown = talks_pages.booking_page(page.language, page.view, proof=proof, problem=attempt.outcome)
        return html_page(shown, _STATUS_OF_OUTCOME[attempt.outcome])
    return html_page(talks_pages.confirmation_page(page.language, page.view))


async def _refuse_forgery(runtime: Runtime, token: str) -> HTMLResponse:
    # A cross-site form, or a post without the page's value: nothing is booked; the page comes back with the value.
    page = await runtime.talks.page(token)
    if page.state is not PageState.OPEN or page.view is None:
        return _not_bookable(runtime, page)
    runtime.metrics.link_rejected("forgery")
    shown = talks_pages.booking_page(page.language, page.view, proof=runtime.keys.form_proof(token), forgery=True)
    return html_page(shown, 403)
