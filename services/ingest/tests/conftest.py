"""Fixtures: the ingest on the real broker, with a SQLite database (or each database, where asked)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from notify_ingest.settings import IngestSettings
from notify_ingest.testing import RunningIngest, isolated_settings, running_ingest


@pytest.fixture(autouse=True)
def _ingest_logs_watched_at_every_level(caplog: pytest.LogCaptureFixture) -> None:
    # The suite-wide fixture (conftest.py at the root) checks every captured record for personal data; make
    # sure the ingest's own records and those of its HTTP stack are captured at every level.
    for name in ("notify_ingest", "fastapi", "uvicorn"):
        caplog.set_level(logging.DEBUG, logger=name)


@pytest.fixture
def settings(kafka_bootstrap: str, tmp_path: Path) -> IngestSettings:
    return isolated_settings(kafka_bootstrap=kafka_bootstrap, work_dir=tmp_path)


@pytest.fixture
async def ingest(settings: IngestSettings) -> AsyncIterator[RunningIngest]:
    async with running_ingest(settings) as running:
        yield running
