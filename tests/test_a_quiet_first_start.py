"""A first start on a fresh cluster's topics, and the first send, log no ERROR: an operator reads ERROR as "act"."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from notify_invitations.testing import Deployment, isolated_settings
from notify_shared import samples
from notify_shared.contract import Channel
from notify_shared.testing.kafka import EventPublisher, TopicReader
from notify_shared.testing.sinks import sms_sink, smtp_sink
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka


async def test_a_service_started_on_topics_that_do_not_exist_yet_sends_without_an_error_line(
    kafka_bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    event = samples.meeting_created(recipients=[samples.sample_guardian(1, channels=[Channel.EMAIL])])
    with smtp_sink() as smtp, sms_sink() as sms:
        # No topic is created beforehand and the consumer group is new: the broker creates the meeting topics,
        # the status topic and the group's coordinator state on first use, as in a new deployment.
        settings = isolated_settings(kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path, smtp=smtp, sms=sms)
        deployment = Deployment(settings, smtp, sms)
        async with (
            deployment.running(),
            EventPublisher(kafka_bootstrap, deployment.topics) as publisher,
            TopicReader(kafka_bootstrap, deployment.topics.notification_status) as statuses,
        ):
            await publisher.publish(event)

            async def sent() -> bool:
                return any(status["data"]["status"] == "sent" for status in await statuses.poll())

            await wait_until(sent, within=60, what="the first notification's `sent` status")

    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []
    assert len(smtp.received) == 1
