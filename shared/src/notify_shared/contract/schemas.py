"""JSON Schemas of every event, generated from the models and committed under `docs/contract/schemas/`.

Admin-system integrators read and validate against these files without running Python; a test fails when a
model changes and the committed files were not regenerated (`notify contract write`).
"""

from __future__ import annotations

import json
from pathlib import Path

from notify_shared.contract.envelope import ALL_EVENT_TYPES

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Every schema's `$id` is this base plus its file name. An `$id` must be an absolute URI, but it names a schema, it
# is not where to download it (the files live in this repository). `.invalid` is reserved never to exist (RFC 2606),
# so no one can ever serve other documents under these names to a tool that does try to fetch them, and the base
# never has to change when the project or a deployment moves. It is hierarchical, so a `$ref` from one of these
# schemas to a sibling file by its name would resolve to the sibling's `$id`.
SCHEMA_BASE_URI = "https://notify.invalid/contract/schemas/"


def schema_id(event_type: str) -> str:
    """The absolute `$id` of the JSON Schema of `event_type`."""
    return f"{SCHEMA_BASE_URI}{schema_file_name(event_type)}"


def schema_file_name(event_type: str) -> str:
    """The file under `docs/contract/schemas/` that holds the JSON Schema of `event_type`."""
    return f"{event_type}.schema.json"


def event_schemas() -> dict[str, str]:
    """File name → JSON text, one schema per event type, stable across runs."""
    documents: dict[str, str] = {}
    for event_type, model in sorted(ALL_EVENT_TYPES.items()):
        schema = {"$schema": SCHEMA_DIALECT, "$id": schema_id(event_type)} | model.model_json_schema()
        documents[schema_file_name(event_type)] = (
            json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
        )
    return documents


def write_schemas(directory: Path) -> list[Path]:
    """Write every schema into `directory`, removing schemas of event types that no longer exist."""
    directory.mkdir(parents=True, exist_ok=True)
    documents = event_schemas()
    for stale in directory.glob("*.schema.json"):
        if stale.name not in documents:
            stale.unlink()
    written = []
    for name, text in documents.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
