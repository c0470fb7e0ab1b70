"""The committed AsyncAPI document is what the service really subscribes and publishes."""

from __future__ import annotations

import json
from pathlib import Path

from notify_invitations.app import create_app
from notify_invitations.settings import InvitationsSettings

COMMITTED = Path(__file__).resolve().parents[3] / "docs" / "contract" / "asyncapi" / "invitations.json"


def test_the_committed_asyncapi_document_is_up_to_date() -> None:
    # The defaults a clean environment gives, as scripts/regenerate-contract uses.
    settings = InvitationsSettings(
        kafka_bootstrap_servers="127.0.0.1:9092", topic_prefix="", consumer_group="notify-invitations"
    )
    schema = create_app(settings).schema
    assert schema is not None
    generated = schema.to_specification().to_jsonable()
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert generated == committed, "stale: run scripts/regenerate-contract and commit the result"


def test_the_asyncapi_document_describes_the_meeting_events_and_our_outputs() -> None:
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    addresses = sorted(channel["address"] for channel in document["channels"].values())
    assert addresses == [
        "event.handled",
        "meeting.cancelled",
        "meeting.created",
        "meeting.updated",
        "notification.dead-letter",
        "notification.status",
    ]
    assert {"MeetingCreated", "MeetingUpdated", "MeetingCancelled", "NotificationStatus", "EventHandled"} <= set(
        document["components"]["schemas"]
    )
