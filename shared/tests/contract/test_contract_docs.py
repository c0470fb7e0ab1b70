"""docs/contract.md stays true: every example in it is a valid event of the type it claims."""

from __future__ import annotations

import json
import re
from pathlib import Path

from notify_shared.contract import ALL_EVENT_TYPES

DOC = Path(__file__).resolve().parents[3] / "docs" / "contract.md"


def _examples() -> list[dict[str, object]]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    return [json.loads(block) for block in blocks]


def test_the_contract_doc_shows_a_valid_example_of_every_event_type() -> None:
    examples = _examples()
    for example in examples:
        ALL_EVENT_TYPES[str(example["type"])].model_validate(example)
    assert sorted({str(example["type"]) for example in examples}) == sorted(ALL_EVENT_TYPES)
