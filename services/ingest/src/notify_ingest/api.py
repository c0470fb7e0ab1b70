"""The HTTP API: `POST /v1/events`, described by the OpenAPI document FastAPI derives from this code
(committed as docs/ingest-openapi.json; `notify_ingest.openapi` writes it)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from notify_ingest.ingestion import Outcome, Result
from notify_ingest.runtime import Runtime
from notify_shared import samples
from notify_shared.contract import CLOUDEVENTS_JSON, INPUT_EVENT_TYPES

EVENTS_PATH = "/v1/events"
SCHEMA_REF = "#/components/schemas/{model}"


class Accepted(BaseModel):
    """The event is on Kafka (now, or from an earlier request with the same id)."""

    id: str = Field(description="The event's CloudEvents id, as posted.", examples=["01JDQ5W8M3C8ZK4N2T6Y7B9E0F"])
    type: str = Field(description="The event type, which is also the topic it was published to (behind the prefix).")
    duplicate: bool = Field(
        description="True when this id had been accepted before: nothing was published again.", examples=[False]
    )


class FieldError(BaseModel):
    field: str | None = Field(
        description="Path of the field in the event, e.g. `data.meeting.location` or `data.recipients.0.phone`; "
        "null when the problem is with the body as a whole (not JSON, not a CloudEvent).",
        examples=["data.meeting.location"],
    )
    message: str = Field(description="What is wrong with it.", examples=["Field required"])


ErrorCode = Literal[
    "invalid_event",
    "unauthorized",
    "forbidden",
    "not_allowed",
    "too_large",
    "unsupported_media_type",
    "conflict",
    "rate_limited",
    "unavailable",
]


class Problem(BaseModel):
    """Why the event was not accepted. Never echoes a field's value."""

    error: ErrorCode = Field(description="A stable machine-readable code.")
    message: str = Field(description="What happened and what to do, for the person integrating.")
    event_id: str | None = Field(default=None, description="The event's id, when it could be read.")
    reason: str | None = Field(
        default=None,
        description="For `invalid_event`: the same code the services put on a dead letter — `malformed_json`, "
        "`not_a_cloudevent`, `unknown_event_type` or `schema_violation`.",
        examples=["schema_violation"],
    )
    errors: list[FieldError] = Field(
        default_factory=list, description="For `invalid_event` and `not_allowed`: each problem found."
    )


# Each outcome's HTTP status and, for refusals, its error code and message.
_STATUS: dict[Outcome, int] = {
    Outcome.ACCEPTED: 202,
    Outcome.DUPLICATE: 202,
    Outcome.INVALID: 400,
    Outcome.UNAUTHORIZED: 401,
    Outcome.FORBIDDEN: 403,
    Outcome.NOT_ALLOWED: 403,
    Outcome.CONFLICT: 409,
    Outcome.TOO_LARGE: 413,
    Outcome.UNSUPPORTED_MEDIA_TYPE: 415,
    Outcome.RATE_LIMITED: 429,
    Outcome.UNAVAILABLE: 503,
}
_REFUSALS: dict[Outcome, tuple[ErrorCode, str]] = {
    Outcome.INVALID: ("invalid_event", "The event breaks the contract (docs/contract.md); nothing was published."),
    Outcome.UNAUTHORIZED: (
        "unauthorized",
        "Send your school's API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
    ),
    Outcome.FORBIDDEN: (
        "forbidden",
        "The event's data.school.id is not the school this API key belongs to; use that school's own key.",
    ),
    Outcome.CONFLICT: (
        "conflict",
        "This event id was already accepted with different content. A changed event needs a new id "
        "(for a changed meeting, send meeting.updated with a new id).",
    ),
    Outcome.NOT_ALLOWED: (
        "not_allowed",
        "The event is valid, but this deployment does not allow some of it for your school (its name, its SMS "
        "sender id, or SMS to a country it does not serve): `errors` names each field. Nothing was published.",
    ),
    Outcome.RATE_LIMITED: (
        "rate_limited",
        "Too many requests from this API key, or too many with a wrong key from this address. Wait the "
        "`Retry-After` seconds, then post the same event again.",
    ),
    Outcome.TOO_LARGE: ("too_large", "The body is larger than this endpoint accepts."),
    Outcome.UNSUPPORTED_MEDIA_TYPE: (
        "unsupported_media_type",
        f"Send the event as one JSON document with `Content-Type: {CLOUDEVENTS_JSON}` (or application/json).",
    ),
    Outcome.UNAVAILABLE: (
        "unavailable",
        "The event could not be published just now; nothing is lost. Post the same event (same id) again.",
    ),
}


def _problem_response(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"model": model, "description": description}


_bearer = HTTPBearer(auto_error=False, description="The school's API key: `Authorization: Bearer <key>`.")
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The school's API key, for clients that cannot send a bearer token."
)


def _event_schema() -> dict[str, Any]:
    refs = {event_type: SCHEMA_REF.format(model=model.__name__) for event_type, model in INPUT_EVENT_TYPES.items()}
    return {
        "oneOf": [{"$ref": ref} for ref in refs.values()],
        "discriminator": {"propertyName": "type", "mapping": refs},
    }


def event_component_schemas() -> dict[str, Any]:
    """The JSON Schemas of the input events and the blocks they use, for the OpenAPI document's components —
    generated from the same models as docs/contract/schemas/."""
    _, definitions = models_json_schema(
        [(model, "validation") for model in INPUT_EVENT_TYPES.values()], ref_template=SCHEMA_REF
    )
    schemas: dict[str, Any] = definitions["$defs"]
    return schemas


def _example_event() -> dict[str, Any]:
    event = samples.meeting_created(event_id="01JDQ5W8M3C8ZK4N2T6Y7B9E0F")
    example: dict[str, Any] = event.model_dump(mode="json", exclude_none=True)
    return example


_REQUEST_BODY = {
    "required": True,
    "description": "One CloudEvent in structured JSON mode: the same document an admin system would publish to "
    "Kafka (docs/contract.md). Its `type` picks the topic; its `data.school.id` must be your school.",
    "content": {
        CLOUDEVENTS_JSON: {"schema": _event_schema(), "example": _example_event()},
        "application/json": {"schema": _event_schema()},
    },
}


router = APIRouter()


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.post(
    EVENTS_PATH,
    status_code=202,
    response_model=Accepted,
    summary="Publish one event",
    description=(
        "Validates a CloudEvent against the contract and publishes it to Kafka on the topic named after its "
        "type, keyed by the meeting id or pupil id. Idempotent on the event id: posting the same event again "
        "answers 202 with `duplicate: true` and publishes nothing. See docs/ingest.md."
    ),
    responses={
        202: {"description": "Published, or published before (`duplicate: true`)."},
        400: _problem_response(Problem, "The event breaks the contract: `errors` lists each field and problem."),
        401: _problem_response(Problem, "No API key, or not a valid one."),
        403: _problem_response(
            Problem,
            "The key is valid, but for another school than the event's (`forbidden`); or the event carries a "
            "school name, SMS sender id or phone country this deployment does not allow it (`not_allowed`).",
        ),
        409: _problem_response(Problem, "The id was accepted before with different content."),
        413: _problem_response(Problem, "The body is larger than INGEST_MAX_BODY_BYTES (1 MiB by default)."),
        415: _problem_response(Problem, "Not application/cloudevents+json or application/json."),
        429: _problem_response(
            Problem, "Too many requests for this key, or too many wrong keys from this address: see `Retry-After`."
        ),
        503: _problem_response(Problem, "Kafka or the database is unavailable: retry with the same event later."),
    },
    openapi_extra={"requestBody": _REQUEST_BODY},
    tags=["events"],
)
async def post_event(
    request: Request,
    runtime: Annotated[Runtime, Depends(_runtime)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> Response:
    # The bearer token when there is one, else X-API-Key.
    school_id, result = _admitted(runtime, request.client.host if request.client else "", bearer, api_key)
    if result is None:
        assert school_id is not None
        body = await _read_body(request, runtime.settings.max_body_bytes)
        if body is None:
            result = Result(Outcome.TOO_LARGE)
        else:
            result = await runtime.ingestor.ingest(body, request.headers.get("content-type"), school_id=school_id)
    runtime.metrics.request_answered(school_id=school_id, outcome=result.outcome)
    return _response(result)


def _admitted(
    runtime: Runtime, address: str, bearer: HTTPAuthorizationCredentials | None, api_key: str | None
) -> tuple[str | None, Result | None]:
    """The caller's school, and the answer when the request goes no further (checked before the body is read)."""
    wait = runtime.failed_key_limits.wait_for(address)
    if wait is not None:
        return None, Result(Outcome.RATE_LIMITED, retry_after_seconds=wait)
    school_id = runtime.api_keys.school_for(bearer.credentials if bearer else api_key)
    if school_id is None:
        runtime.failed_key_limits.failed(address)
        return None, Result(Outcome.UNAUTHORIZED)
    wait = runtime.key_rate_limits.wait_for(school_id)
    if wait is not None:
        return school_id, Result(Outcome.RATE_LIMITED, retry_after_seconds=wait)
    return school_id, None


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None once it is longer than `limit` (the rest is never read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _response(result: Result) -> Response:
    status = _STATUS[result.outcome]
    if result.outcome in (Outcome.ACCEPTED, Outcome.DUPLICATE):
        assert result.event_id is not None
        assert result.event_type is not None
        accepted = Accepted(id=result.event_id, type=result.event_type, duplicate=result.outcome is Outcome.DUPLICATE)
        return JSONResponse(accepted.model_dump(mode="json"), status_code=status)
    code, message = _REFUSALS[result.outcome]
    problem = Problem(
        error=code,
        message=message,
        event_id=result.event_id,
        reason=result.reason,
        errors=[FieldError(field=item.field, message=item.message) for item in result.problems],
    )
    headers: dict[str, str] = {}
    if result.outcome is Outcome.UNAUTHORIZED:
        headers["WWW-Authenticate"] = "Bearer"
    if result.retry_after_seconds is not None:
        headers["Retry-After"] = str(math.ceil(result.retry_after_seconds))
    return JSONResponse(problem.model_dump(mode="json"), status_code=status, headers=headers)
