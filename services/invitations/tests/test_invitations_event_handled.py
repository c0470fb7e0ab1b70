"""event.handled: every meeting event leaves a trace on the topics, saying what came of it, sends or not."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import pytest

from notify_invitations.testing import Deployment
from notify_shared import samples
from notify_shared.testing.kafka import EventPublisher, TopicReader
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka


def outcome_of(reports: list[dict[str, Any]], event_id: str) -> list[tuple[str, str | None, dict[str, int]]]:
    return [
        (report["data"]["outcome"], report["data"].get("reason"), report["data"]["notifications"])
        for report in reports
        if report["data"]["source_event_id"] == event_id
    ]


async def test_each_meeting_event_says_what_came_of_it_even_when_nothing_is_sent(
    deployment: Deployment, kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="notify_invitations")
    created = samples.meeting_created()
    meeting = created.data.meeting
    agenda_only = samples.meeting_updated(
        meeting=meeting.model_copy(update={"agenda": "Ny sak: skolefotografering."}),
        time=created.time + timedelta(days=1) if created.time else None,
    )
    older = samples.meeting_updated(
        meeting=meeting.model_copy(update={"location": "Gymsalen, Bjølsen skole"}),
        time=datetime(2026, 11, 1, 9, 0, tzinfo=samples.OSLO),
    )
    async with (
        deployment.running(),
        EventPublisher(kafka_bootstrap, deployment.topics) as publisher,
        TopicReader(kafka_bootstrap, deployment.topics.event_handled) as handled,
    ):
        published: list[str] = []
        for event in (created, agenda_only, older, created):  # the last: the same id again
            published.append(event.id)

            async def reported(event_id: str = event.id, times: int = published.count(event.id)) -> bool:
                return len(outcome_of(await handled.poll(), event_id)) >= times

            await publisher.publish(event)
            await wait_until(reported, what=f"event.handled for {event.type} {event.id}")

    reports = handled.records
    assert outcome_of(reports, created.id) == [
        ("notified", None, {"sent": 4}),
        ("already_handled", None, {}),
    ]
    assert outcome_of(reports, agenda_only.id) == [("nothing_to_send", "no_time_or_place_change", {})]
    assert outcome_of(reports, older.id) == [("stale", "older_than_applied", {})]
    assert {report["data"]["service"] for report in reports} == {"invitations"}
    assert {report["data"]["school_id"] for report in reports} == {"nor-0301-bjolsen"}
    assert len(deployment.smtp.received) == 2
    assert len(deployment.sms.messages()) == 2

    # The log counts what was really sent, not what was planned.
    lines = [record.getMessage() for record in caplog.records if created.id in record.getMessage()]
    assert lines[0].endswith("invite → notified (sent 4)")
    assert lines[1].endswith("invite → already_handled")
