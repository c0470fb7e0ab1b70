"""The committed AsyncAPI document is what the digest service really subscribes and publishes."""

from __future__ import annotations

import json
from pathlib import Path

from notify_digest.app import create_app
from notify_digest.settings import DigestSettings

COMMITTED = Path(__file__).resolve().parents[3] / "docs" / "contract" / "asyncapi" / "digest.json"


def test_the_committed_asyncapi_document_is_up_to_date() -> None:
    settings = DigestSettings(kafka_bootstrap_servers="127.0.0.1:9092", topic_prefix="", consumer_group="notify-digest")
    schema = create_app(settings).schema
    assert schema is not None
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert schema.to_specification().to_jsonable() == committed, "stale: run scripts/regenerate-contract"
