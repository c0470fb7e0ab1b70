"""The committed OpenAPI document (docs/ingest-openapi.json) is what the app really serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from notify_ingest.app import openapi_document
from notify_ingest.testing import RunningIngest

COMMITTED = Path(__file__).resolve().parents[3] / "docs" / "ingest-openapi.json"


def test_the_committed_openapi_document_is_up_to_date() -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert openapi_document() == committed, "stale: run scripts/regenerate-contract and commit the result"


@pytest.mark.kafka
async def test_the_running_ingest_serves_the_committed_document_at_openapi_json(ingest: RunningIngest) -> None:
    response = await ingest.client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == json.loads(COMMITTED.read_text(encoding="utf-8"))


def test_the_document_describes_the_event_body_the_keys_and_every_answer() -> None:
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    operation = document["paths"]["/v1/events"]["post"]
    assert set(operation["requestBody"]["content"]) == {"application/cloudevents+json", "application/json"}
    body_schema = operation["requestBody"]["content"]["application/cloudevents+json"]["schema"]
    assert set(body_schema["discriminator"]["mapping"]) == {
        "meeting.created",
        "meeting.updated",
        "meeting.cancelled",
        "message.posted",
        "absence.noted",
        "talks.offered",
    }
    for reference in body_schema["discriminator"]["mapping"].values():
        assert reference.removeprefix("#/components/schemas/") in document["components"]["schemas"]
    assert set(operation["responses"]) == {"202", "400", "401", "403", "409", "413", "415", "429", "503"}
    assert operation["security"] == [{"HTTPBearer": []}, {"APIKeyHeader": []}]
    assert document["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    # The operators' routes are served but are not part of the integrators' document.
    assert set(document["paths"]) == {"/v1/events"}


def test_the_committed_document_is_a_valid_openapi_document_that_names_where_to_send_and_the_licence() -> None:
    # A validator of its own (openapi-spec-validator), not FastAPI that wrote it: what client generators read.
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    validate(document)
    production, local = document["servers"]
    assert production["url"] == "https://{host}"
    assert production["variables"]["host"]["default"]
    assert local["url"].startswith("http://127.0.0.1:")
    # Client generators copy the licence into what they generate; an SPDX identifier is what they understand.
    assert document["info"]["license"] == {"name": "EUPL-1.2", "identifier": "EUPL-1.2"}


def test_the_discriminator_names_a_property_every_event_requires() -> None:
    # An OpenAPI discriminator must be a required property of every schema it picks between.
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    body_schema = document["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/cloudevents+json"]
    discriminator = body_schema["schema"]["discriminator"]
    for reference in discriminator["mapping"].values():
        component = document["components"]["schemas"][reference.removeprefix("#/components/schemas/")]
        assert discriminator["propertyName"] in component["required"], reference
