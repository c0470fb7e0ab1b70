"""Fixtures: the responses service on the real broker, with a SQLite database."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from notify_responses.settings import ResponsesSettings
from notify_responses.testing import RunningResponses, isolated_settings, running_responses
from notify_shared.samples import SAMPLE_NOW
from notify_shared.testing.clocks import SettableClock


@pytest.fixture(autouse=True)
def _responses_logs_watched_at_every_level(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    # The suite-wide fixture (conftest.py at the root) checks every record for personal data; here every record
    # is also checked for the answer links the test used, which are credentials.
    for name in ("notify_responses", "fastapi", "uvicorn"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield
    # httpx is the tests' own client here (the service makes no HTTP requests), and it logs every URL.
    tokens = [
        record.getMessage() for record in caplog.records if "/r/" in record.getMessage() and record.name != "httpx"
    ]
    assert not tokens, f"an answer link in a log line: {tokens[:3]}"


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(SAMPLE_NOW)


@pytest.fixture
def settings(kafka_bootstrap: str, tmp_path: Path) -> ResponsesSettings:
    return isolated_settings(kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path)


@pytest.fixture
async def responses(settings: ResponsesSettings, clock: SettableClock) -> AsyncIterator[RunningResponses]:
    async with running_responses(settings, clock=clock) as running:
        yield running
