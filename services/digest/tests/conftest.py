"""Fixtures: an isolated digest deployment on the real broker, with a local SMTP server and SMS endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from notify_digest.testing import Deployment, TestClock, isolated_settings
from notify_shared.testing.kafka import create_all_topics
from notify_shared.testing.sinks import SmsSink, SmtpSink, sms_sink, smtp_sink

# Monday 30 November 2026, 08:40 in Oslo: the school day has started.
MONDAY_MORNING = datetime(2026, 11, 30, 8, 40, tzinfo=ZoneInfo("Europe/Oslo"))


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with smtp_sink() as sink:
        yield sink


@pytest.fixture
def sms() -> Iterator[SmsSink]:
    with sms_sink() as sink:
        yield sink


@pytest.fixture
async def deployment(kafka_bootstrap: str, tmp_path: Path, smtp: SmtpSink, sms: SmsSink) -> Deployment:
    settings = isolated_settings(kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path, smtp=smtp, sms=sms)
    await create_all_topics(kafka_bootstrap, settings.topics)
    return Deployment(settings, TestClock(MONDAY_MORNING), smtp, sms)


@pytest.fixture
async def deployment_on_each_database(
    kafka_bootstrap: str, tmp_path: Path, smtp: SmtpSink, sms: SmsSink, database_url: str
) -> Deployment:
    settings = isolated_settings(
        kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path, smtp=smtp, sms=sms, database_url=database_url
    )
    await create_all_topics(kafka_bootstrap, settings.topics)
    return Deployment(settings, TestClock(MONDAY_MORNING), smtp, sms)
