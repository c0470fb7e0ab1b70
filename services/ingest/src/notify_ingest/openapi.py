"""Write the ingest's OpenAPI document: `python -m notify_ingest.openapi docs/ingest-openapi.json`.

scripts/regenerate-contract runs this; a test fails while the committed document is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from notify_ingest.app import openapi_document

DEFAULT_PATH = Path("docs/ingest-openapi.json")


def openapi_json() -> str:
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    path = Path(arguments[0]) if arguments else DEFAULT_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(openapi_json(), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
