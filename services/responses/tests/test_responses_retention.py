"""A month after a meeting ended the service has forgotten it: invitations, numbers and answers are gone."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from notify_responses.retention import rules
from notify_responses.settings import ResponsesSettings
from notify_responses.store import answers, invitations, meetings
from notify_responses.testing import RunningResponses, link_for
from notify_shared import samples
from notify_shared.retention.job import Retention
from notify_shared.testing.clocks import SettableClock
from notify_shared.testing.kafka import EventPublisher
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka


async def _rows(responses: RunningResponses, table: sa.Table) -> int:
    async with responses.runtime.store.engine.connect() as connection:
        return int(await connection.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def test_a_finished_meeting_is_forgotten_after_the_retention_time_and_not_before(
    settings: ResponsesSettings, responses: RunningResponses, clock: SettableClock
) -> None:
    event = samples.meeting_created()
    async with EventPublisher(settings.kafka_bootstrap_servers, settings.topics) as publisher:
        await publisher.publish(event)
    token = link_for(settings, event)

    async def known() -> bool:
        return (await responses.open(token)).status_code == 200

    await wait_until(known, within=30, what="the meeting known to the service")
    assert (await responses.answer(token, answer="accepted")).status_code == 200
    retention = Retention(responses.runtime.store.engine, rules(), settings.retention_windows, clock=clock)
    keep = settings.retention_personal_data

    async def meetings_forgotten() -> int:
        counts = {count.rule: count.rows for count in await retention.purge()}
        return counts["responses.meetings"]

    clock.now = event.data.meeting.ends_at + keep - timedelta(minutes=1)
    assert await meetings_forgotten() == 0
    assert await _rows(responses, answers) == 1

    clock.now = event.data.meeting.ends_at + keep + timedelta(minutes=1)
    assert await meetings_forgotten() == 1

    for table in (meetings, invitations, answers):
        assert await _rows(responses, table) == 0
    assert (await responses.open(token)).status_code in {404, 410}
