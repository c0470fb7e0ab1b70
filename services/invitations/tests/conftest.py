"""Fixtures: an isolated invitations deployment on the real broker, with a local SMTP server and SMS endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from notify_invitations.testing import Deployment, isolated_settings
from notify_shared.testing.kafka import create_all_topics
from notify_shared.testing.sinks import SmsSink, SmtpSink, sms_sink, smtp_sink


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
    """The service on a SQLite database."""
    settings = isolated_settings(kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path, smtp=smtp, sms=sms)
    await create_all_topics(kafka_bootstrap, settings.topics)
    return Deployment(settings, smtp, sms)


@pytest.fixture
async def deployment_on_each_database(
    kafka_bootstrap: str, tmp_path: Path, smtp: SmtpSink, sms: SmsSink, database_url: str
) -> Deployment:
    """The service once on SQLite and once on PostgreSQL."""
    settings = isolated_settings(
        kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path, smtp=smtp, sms=sms, database_url=database_url
    )
    await create_all_topics(kafka_bootstrap, settings.topics)
    return Deployment(settings, smtp, sms)
