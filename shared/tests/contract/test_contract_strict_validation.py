"""The published contract, read by a second and stricter validator than the one the services use.

The services validate events with pydantic, and the JSON Schemas are generated from the same pydantic models, so a
schema that says less than the services enforce (an attribute left optional, a format that means something else)
passes every test that uses pydantic alone. Here only the committed files are read (docs/contract/schemas/, the
AsyncAPI documents, the ingest's OpenAPI document), by `check-jsonschema`: the jsonschema library with every format
checked and ECMAScript regular expressions, as Ajv and most integrators' tools read them. Every example we publish
must pass it, and events the services refuse must fail it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from notify_shared import samples
from notify_shared.contract import ALL_EVENT_TYPES, INPUT_EVENT_TYPES, encode_structured
from notify_shared.contract.envelope import REQUIRED_CONTEXT_ATTRIBUTES
from notify_shared.contract.schemas import SCHEMA_DIALECT, schema_id

DOCS = Path(__file__).resolve().parents[3] / "docs"
SCHEMAS = DOCS / "contract" / "schemas"
ASYNCAPI = DOCS / "contract" / "asyncapi"
OPENAPI = DOCS / "ingest-openapi.json"
# The AsyncAPI and OpenAPI documents have no `$id` of their own; these name them inside this test only, so that a
# `$ref` can point into their components.
TEST_DOCUMENT_BASE = "https://notify.invalid/tests/"

# Keywords whose value maps names to schemas: their keys are names, not keywords.
_SCHEMA_MAPS = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "schemas"}

# For every `format` the schemas use, a value that breaks it. A format the validator does not know passes anything,
# so a new one must be added here and shown to be checked.
_BROKEN_VALUE_OF_FORMAT = {
    "date": "2026-02-30",
    "date-time": "2026-12-03 18:00",
    "uri-reference": "visma flyt/0301",
}


@dataclass(frozen=True)
class Instance:
    """One document to check, the schema it must (or must not) match, and what to call it in a failure."""

    label: str
    document: object
    schema_ref: str
    valid: bool = True


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def _published_schemas() -> dict[str, dict[str, Any]]:
    return {path.name: _load(path) for path in sorted(SCHEMAS.glob("*.schema.json"))}


def _api_documents() -> dict[str, dict[str, Any]]:
    """The AsyncAPI and OpenAPI documents, each with a test-only `$id` so `$ref`s can reach into them."""
    documents = {f"asyncapi/{path.name}": _load(path) for path in sorted(ASYNCAPI.glob("*.json"))}
    documents[OPENAPI.name] = _load(OPENAPI)
    return {name: {"$id": f"{TEST_DOCUMENT_BASE}{name}"} | document for name, document in documents.items()}


def _component_schemas(document: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    return schemas


def _ref(base: str, pointer: str = "") -> str:
    return f"{base}#{quote(pointer, safe='/~$:@!')}" if pointer else base


def _subschemas(node: object, pointer: str, *, names: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object below `node`, with its JSON pointer; `names` when `node` maps names to schemas."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _subschemas(item, f"{pointer}/{index}")
        return
    if not isinstance(node, dict):
        return
    if not names:
        yield pointer, node
    for key, value in node.items():
        child = f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}"
        yield from _subschemas(value, child, names=not names and key in _SCHEMA_MAPS)


def _every_schema_in_every_document() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(document base URI, pointer, schema) for the JSON Schemas and the API documents' components."""
    for schema in _published_schemas().values():
        yield from ((schema["$id"], pointer, node) for pointer, node in _subschemas(schema, ""))
    for document in _api_documents().values():
        components = _component_schemas(document)
        pointers = _subschemas(components, "/components/schemas", names=True)
        yield from ((document["$id"], pointer, node) for pointer, node in pointers)


def _check(instances: list[Instance], tmp_path: Path) -> None:
    """Run check-jsonschema once over all `instances`; fail naming each instance it disagrees about."""
    items = [{"$ref": item.schema_ref} if item.valid else {"not": {"$ref": item.schema_ref}} for item in instances]
    wrapper = {
        "$schema": SCHEMA_DIALECT,
        "$defs": {name: schema for name, schema in [*_published_schemas().items(), *_api_documents().items()]},
        "type": "array",
        "prefixItems": items,
        "items": False,
    }
    schema_file, instance_file = tmp_path / "contract.schema.json", tmp_path / "instances.json"
    schema_file.write_text(json.dumps(wrapper), encoding="utf-8")
    instance_file.write_text(json.dumps([item.document for item in instances]), encoding="utf-8")
    result = _run_check_jsonschema("--schemafile", str(schema_file), str(instance_file))
    legend = "\n".join(f"  $[{index}]: {item.label}" for index, item in enumerate(instances))
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\nwhere\n{legend}"


def _run_check_jsonschema(*arguments: str) -> subprocess.CompletedProcess[str]:
    # Formats are checked by default; regular expressions are ECMAScript's (unicode mode), as JavaScript reads them.
    command = [sys.executable, "-m", "check_jsonschema", "--regex-variant", "default", *arguments]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def _doc_examples() -> list[dict[str, Any]]:
    text = (DOCS / "contract.md").read_text(encoding="utf-8")
    blocks = text.split("```json\n")[1:]
    return [json.loads(block.split("```", 1)[0]) for block in blocks]


def _sample_events() -> list[Instance]:
    """The samples `notify sample` prints, as they go on the wire (structured mode)."""
    events = [
        samples.meeting_created(),
        samples.meeting_updated(),
        samples.meeting_cancelled(),
        samples.message_posted(),
        samples.absence_noted(),
    ]
    return [
        Instance(f"notify sample {event.type}", json.loads(encode_structured(event)[0]), schema_id(event.type))
        for event in events
    ]


def _schema_examples() -> list[Instance]:
    """Every value of every `examples` keyword, against the schema it stands in."""
    instances = []
    for base, pointer, node in _every_schema_in_every_document():
        examples = node.get("examples")
        if isinstance(examples, list):
            instances += [
                Instance(f"example {example!r} at {base}#{pointer}", example, _ref(base, pointer))
                for example in examples
            ]
    return instances


def test_every_published_schema_is_a_valid_json_schema() -> None:
    files = [str(path) for path in sorted(SCHEMAS.glob("*.schema.json"))]
    assert len(files) == len(ALL_EVENT_TYPES)

    result = _run_check_jsonschema("--check-metaschema", *files)

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_schema_names_itself_by_an_absolute_id_of_its_file() -> None:
    for name, schema in _published_schemas().items():
        assert schema["$schema"] == SCHEMA_DIALECT
        assert schema["$id"].startswith("https://"), name
        assert schema["$id"].endswith(f"/{name}"), name


def test_every_example_we_publish_passes_the_stricter_validator(tmp_path: Path) -> None:
    documented = [
        Instance(f"docs/contract.md example of {example['type']}", example, schema_id(str(example["type"])))
        for example in _doc_examples()
    ]
    openapi = _api_documents()[OPENAPI.name]
    (request_example,) = [
        media["example"]
        for media in openapi["paths"]["/v1/events"]["post"]["requestBody"]["content"].values()
        if "example" in media
    ]
    model = INPUT_EVENT_TYPES[request_example["type"]].__name__
    ingest_example = Instance(
        "the request example of ingest-openapi.json",
        request_example,
        _ref(openapi["$id"], f"/components/schemas/{model}"),
    )
    instances = [*documented, *_sample_events(), ingest_example, *_schema_examples()]
    assert {item.schema_ref for item in documented} == {schema_id(event_type) for event_type in ALL_EVENT_TYPES}

    _check(instances, tmp_path)


def test_events_the_services_would_dead_letter_fail_the_published_schemas(tmp_path: Path) -> None:
    instances = []
    for example in _doc_examples():
        event_type = str(example["type"])
        for attribute in REQUIRED_CONTEXT_ATTRIBUTES:
            without = {name: value for name, value in example.items() if name != attribute}
            instances.append(Instance(f"{event_type} without {attribute}", without, schema_id(event_type), False))
        no_uri = example | {"source": "visma flyt 0301"}
        instances.append(Instance(f"{event_type} with a source that is no URI", no_uri, schema_id(event_type), False))
    created = next(example for example in _doc_examples() if example["type"] == "meeting.created")
    digits_only = created["data"]["school"] | {"sms_sender_id": "12345"}
    all_digits = created | {"data": created["data"] | {"school": digits_only}}
    instances.append(Instance("an SMS sender id without a letter", all_digits, schema_id("meeting.created"), False))
    guardian = created["data"]["recipients"][0] | {"language": "norsk bokmål"}
    no_tag = created | {"data": created["data"] | {"recipients": [guardian]}}
    instances.append(Instance("a language that is no BCP 47 tag", no_tag, schema_id("meeting.created"), False))
    absence = next(example for example in _doc_examples() if example["type"] == "absence.noted")
    for start in ("09:00+01:00", "9:00", "08:30:00.5", "24:00"):
        lesson = {"period": 1, "starts_at": start}
        event = absence | {"data": absence["data"] | {"lessons": [lesson]}}
        instances.append(Instance(f"a lesson starting at {start!r}", event, schema_id("absence.noted"), False))

    _check(instances, tmp_path)


def test_every_format_the_contract_uses_is_one_the_validator_really_checks(tmp_path: Path) -> None:
    used = {node["format"] for _, _, node in _every_schema_in_every_document() if isinstance(node.get("format"), str)}
    assert used <= set(_BROKEN_VALUE_OF_FORMAT), f"add a broken value for {used - set(_BROKEN_VALUE_OF_FORMAT)}"
    instances = [
        Instance(f"{value!r} as {name}", value, _ref(f"{TEST_DOCUMENT_BASE}formats.json", f"/$defs/{name}"), False)
        for name, value in _BROKEN_VALUE_OF_FORMAT.items()
    ]
    formats = {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{TEST_DOCUMENT_BASE}formats.json",
        "$defs": {name: {"type": "string", "format": name} for name in _BROKEN_VALUE_OF_FORMAT},
    }
    schema_file, instance_file = tmp_path / "formats.schema.json", tmp_path / "broken.json"
    wrapper = {
        "$schema": SCHEMA_DIALECT,
        "$defs": {"formats": formats},
        "prefixItems": [{"not": {"$ref": item.schema_ref}} for item in instances],
    }
    schema_file.write_text(json.dumps(wrapper), encoding="utf-8")
    instance_file.write_text(json.dumps([item.document for item in instances]), encoding="utf-8")

    result = _run_check_jsonschema("--schemafile", str(schema_file), str(instance_file))

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_cloudevent_schema_in_every_document_requires_the_cloudevents_attributes() -> None:
    envelopes = 0
    for base, pointer, node in _every_schema_in_every_document():
        properties = node.get("properties")
        if isinstance(properties, dict) and "specversion" in properties:
            envelopes += 1
            missing = set(REQUIRED_CONTEXT_ATTRIBUTES) - set(node.get("required", []))
            assert not missing, f"{base}#{pointer} leaves {sorted(missing)} optional"
    # Each event schema once, and each input event again in the OpenAPI and the AsyncAPI documents.
    assert envelopes >= len(ALL_EVENT_TYPES) + len(INPUT_EVENT_TYPES)


def test_every_required_property_is_one_the_schema_declares() -> None:
    # Ajv's strictRequired: a name in `required` that `properties` lacks is a typo that makes every event invalid.
    for base, pointer, node in _every_schema_in_every_document():
        required = node.get("required")
        if isinstance(required, list) and node.get("type") == "object":
            declared = set(node.get("properties", {}))
            assert set(required) <= declared, f"{base}#{pointer} requires undeclared {set(required) - declared}"
