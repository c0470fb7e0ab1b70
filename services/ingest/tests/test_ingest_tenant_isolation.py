"""Two schools, two API keys, the same ids: what one school posts never makes the other's own event a duplicate or
a conflict (issue 18, "High"), nor does what one of a school's systems posts make another's; and an event dated
too far ahead is refused as the services would refuse it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notify_ingest.settings import IngestSettings
from notify_ingest.testing import (
    OTHER_SCHOOL,
    OTHER_SCHOOL_KEY,
    OTHER_SCHOOL_NAME,
    OTHER_SCHOOL_SMS_SENDER_ID,
    SCHOOL,
    SCHOOL_KEY,
    records_on,
    running_ingest,
)
from notify_shared import samples
from notify_shared.contract import CloudEvent

pytestmark = pytest.mark.kafka

SHARED_EVENT_ID = "01JDQ5W8M3C8ZK4N2T6Y7B9E0F"
NORDNES = samples.sample_school(id=OTHER_SCHOOL, name=OTHER_SCHOOL_NAME, sms_sender_id=OTHER_SCHOOL_SMS_SENDER_ID)


def _document(event: CloudEvent) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(event.model_dump_json(exclude_none=True))
    return document


async def _on_kafka(settings: IngestSettings, event_type: str) -> list[tuple[str, str]]:
    """(event id, school id) of every event on the topic of `event_type`."""
    records = await records_on(settings.kafka_bootstrap_servers, settings.topics.for_event_type(event_type))
    events = [json.loads(record.value) for record in records]
    return sorted((event["id"], event["data"]["school"]["id"]) for event in events)


async def test_an_id_another_school_posted_first_is_still_accepted_from_this_schools_own_key(
    settings: IngestSettings,
) -> None:
    # The same event id, meeting id and guardian id in both schools' admin systems; Nordnes happens to post first.
    nordnes_event = samples.meeting_created(
        event_id=SHARED_EVENT_ID,
        school=NORDNES,
        meeting=samples.sample_meeting(location="Aula, Nordnes skole"),
        recipients=[samples.sample_guardian(1, email="forelder@nordnes.example.no")],
    )
    bjolsen_event = samples.meeting_created(event_id=SHARED_EVENT_ID, recipients=[samples.sample_guardian(1)])

    async with running_ingest(settings) as ingest:
        nordnes_first = await ingest.post_event(_document(nordnes_event), key=OTHER_SCHOOL_KEY)
        bjolsen_own = await ingest.post_event(_document(bjolsen_event), key=SCHOOL_KEY)
        bjolsen_again = await ingest.post_event(_document(bjolsen_event), key=SCHOOL_KEY)
        nordnes_again = await ingest.post_event(_document(nordnes_event), key=OTHER_SCHOOL_KEY)

    assert (nordnes_first.status_code, nordnes_first.json()["duplicate"]) == (202, False)
    assert (bjolsen_own.status_code, bjolsen_own.json()["duplicate"]) == (202, False)
    # Each school's own repeat is still recognised as one, in its own school only.
    assert (bjolsen_again.status_code, bjolsen_again.json()["duplicate"]) == (202, True)
    assert (nordnes_again.status_code, nordnes_again.json()["duplicate"]) == (202, True)
    assert await _on_kafka(settings, "meeting.created") == [(SHARED_EVENT_ID, SCHOOL), (SHARED_EVENT_ID, OTHER_SCHOOL)]


async def test_the_same_id_from_two_sources_of_one_school_is_two_events_each_published_once(
    settings: IngestSettings,
) -> None:
    # Two admin systems of one school, each numbering its events its own way, happen to use the same id; a
    # CloudEvents id is unique only per source, so the second is an event of its own, not a conflict.
    from_visma = samples.meeting_created(event_id=SHARED_EVENT_ID).model_copy(update={"source": "/visma-flyt/0301"})
    from_ist = samples.meeting_created(
        event_id=SHARED_EVENT_ID, meeting=samples.sample_meeting(meeting_id="m-7b-leirskole", title="Leirskolen")
    ).model_copy(update={"source": "urn:ist:extens:0301"})

    async with running_ingest(settings) as ingest:
        visma = await ingest.post_event(_document(from_visma))
        ist = await ingest.post_event(_document(from_ist))
        visma_again = await ingest.post_event(_document(from_visma))
        ist_again = await ingest.post_event(_document(from_ist))

    answers = [(answer.status_code, answer.json()["duplicate"]) for answer in (visma, ist, visma_again, ist_again)]
    # Both first posts are new events; each system's own repeat is still recognised as one.
    assert answers == [(202, False), (202, False), (202, True), (202, True)]
    records = await records_on(settings.kafka_bootstrap_servers, settings.topics.for_event_type("meeting.created"))
    published = sorted((event["source"], event["id"]) for event in map(json.loads, (r.value for r in records)))
    assert published == [("/visma-flyt/0301", SHARED_EVENT_ID), ("urn:ist:extens:0301", SHARED_EVENT_ID)]


async def test_an_event_dated_beyond_the_margin_is_400_time_in_future_and_never_published(
    settings: IngestSettings,
) -> None:
    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    tight = settings.model_copy(update={"event_time_future_margin": timedelta(hours=24)})
    far_future = samples.meeting_updated(time=datetime(2199, 1, 1, tzinfo=UTC))
    within = samples.meeting_updated(time=now + timedelta(hours=23))

    async with running_ingest(tight, clock=lambda: now) as ingest:
        refused = await ingest.post_event(_document(far_future))
        accepted = await ingest.post_event(_document(within))

    assert refused.status_code == 400
    problem = refused.json()
    assert (problem["error"], problem["reason"]) == ("invalid_event", "time_in_future")
    assert [error["field"] for error in problem["errors"]] == ["time"]
    assert "2199-01-01T00:00:00+00:00" in problem["errors"][0]["message"]
    assert accepted.status_code == 202
    assert await _on_kafka(tight, "meeting.updated") == [(within.id, SCHOOL)]
