"""JSON Schemas of every event, generated from the models and committed under `docs/contract/schemas/`.

Admin-system integrators read and validate against these files without running Python; a test fails when a
model changes and the committed files were not regenerated (`notify contract write`).
"""

from __future__ import annotations

import json
from pathlib import Path

from notify_shared.contract.envelope import ALL_EVENT_TYPES

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def event_schemas() -> dict[str, str]:
    """File name → JSON text, one schema per event type, stable across runs."""
    documents: dict[str, str] = {}
    for event_type, model in sorted(ALL_EVENT_TYPES.items()):
        schema = {"$schema": SCHEMA_DIALECT, "$id": f"{event_type}.schema.json"} | model.model_json_schema()
        documents[f"{event_type}.schema.json"] = (
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
