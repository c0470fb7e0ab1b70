"""The committed JSON Schemas are what the models say."""

from __future__ import annotations

from pathlib import Path

from notify_shared.contract.schemas import event_schemas

COMMITTED = Path(__file__).resolve().parents[3] / "docs" / "contract" / "schemas"


def test_every_event_has_a_committed_json_schema_that_is_up_to_date() -> None:
    expected = event_schemas()
    committed = {path.name: path.read_text(encoding="utf-8") for path in COMMITTED.glob("*.schema.json")}
    assert sorted(committed) == sorted(expected), "run scripts/regenerate-contract and commit the result"
    stale = [name for name, text in expected.items() if committed[name] != text]
    assert not stale, f"stale schemas {stale}: run scripts/regenerate-contract and commit the result"
