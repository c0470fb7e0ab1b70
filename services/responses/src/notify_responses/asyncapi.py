"""Write the service's AsyncAPI document: `python -m notify_responses.asyncapi docs/contract/asyncapi/responses.json`.

The service is served by uvicorn rather than `faststream run`, so its document is built here from the same broker
the runtime uses (consumed meeting topics, published meeting.rsvp and dead letters). scripts/regenerate-contract
runs this; a test fails while the committed document is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from faststream.specification import AsyncAPI
from pydantic import SecretStr

from notify_responses.runtime import Runtime
from notify_responses.settings import ResponsesSettings
from notify_shared import LICENSE_SPDX_ID

DEFAULT_PATH = Path("docs/contract/asyncapi/responses.json")


def asyncapi_document() -> dict[str, Any]:
    """The document for the defaults a clean environment gives (no topic prefix, the default group)."""
    settings = ResponsesSettings(
        kafka_bootstrap_servers="127.0.0.1:9092",
        topic_prefix="",
        consumer_group="notify-responses",
        # Placeholders: the document shows no key, but the runtime will not be built without one.
        answer_link_keys={"a": SecretStr("x" * 32)},
        answer_link_signing_key_id="a",
        public_base_url="https://svar.example",
    )
    specification = AsyncAPI(
        Runtime(settings).broker,
        title="notify: responses",
        version="0.1.0",
        description="Parents' answers to invitations: the meetings it learns who may answer from, and meeting.rsvp.",
        license={"name": LICENSE_SPDX_ID},
    )
    document: dict[str, Any] = specification.to_specification().to_jsonable()
    return document


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    path = Path(arguments[0]) if arguments else DEFAULT_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asyncapi_document(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
