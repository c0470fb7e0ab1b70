"""The committed AsyncAPI document is what the service really consumes and publishes."""

from __future__ import annotations

import json
from pathlib import Path

from notify_responses.asyncapi import asyncapi_document

COMMITTED = Path(__file__).resolve().parents[3] / "docs" / "contract" / "asyncapi" / "responses.json"


def test_the_committed_asyncapi_document_is_up_to_date() -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert asyncapi_document() == committed, "stale: run scripts/regenerate-contract and commit the result"


def test_the_asyncapi_document_describes_meetings_and_talk_offers_in_and_answers_and_bookings_out() -> None:
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    addresses = sorted(channel["address"] for channel in document["channels"].values())
    assert addresses == [
        "meeting.cancelled",
        "meeting.created",
        "meeting.rsvp",
        "meeting.updated",
        "notification.dead-letter",
        "notification.status",  # the automatic SMS answers to SMS replies
        "sms.reply-unrecognised",
        "talk.booked",
        "talk.cancelled",
        "talk.moved",
        "talks.offered",
        "talks.round_closed",
    ]
    assert {"MeetingRsvp", "GuardianAnswer", "AnswerChannel"} <= set(document["components"]["schemas"])
    assert {"TalksOffered", "TalkBooked", "TalkMoved", "TalkCancelled"} <= set(document["components"]["schemas"])
