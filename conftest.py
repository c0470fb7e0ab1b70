"""Fixtures every test folder shares: a real Kafka broker and, where wanted, PostgreSQL.

Kafka comes from, in this order: `KAFKA_BOOTSTRAP_SERVERS` when set (the test command sets it after starting the
local broker); testcontainers' Kafka module when a Docker engine answers; otherwise the local broker from
`deploy/kafka/local-kafka`, started here for the session on a port of its own.
PostgreSQL comes from `NOTIFY_TEST_DATABASE_URL` when set, otherwise from `deploy/postgres/local-postgres`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from notify_shared.testing.databases import fresh_postgres_database
from notify_shared.testing.faults import OwnKafkaBroker

REPO = Path(__file__).resolve().parent

# Derandomized Hypothesis with printed reproduction blobs when CI=true (see the module's docstring).
pytest_plugins = ["notify_shared.testing.hypothesis_profiles"]


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        import docker  # type: ignore[import-untyped]  # noqa: PLC0415 - only where testcontainers is wanted

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a real Kafka 4.x broker for the whole session."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer  # noqa: PLC0415 - needs Docker, imported only with it

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    script = REPO / "deploy" / "kafka" / "local-kafka"
    environment = os.environ | {
        "KAFKA_STATE_DIR": str(tmp_path_factory.mktemp("kafka")),
        "KAFKA_PORT": str(_free_port()),
        "KAFKA_CONTROLLER_PORT": str(_free_port()),
    }
    started = subprocess.run([script, "start"], env=environment, capture_output=True, text=True, check=False)
    if started.returncode != 0:
        pytest.fail(f"could not start the local Kafka broker:\n{started.stdout}\n{started.stderr}")
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([script, "stop"], env=environment, check=False, capture_output=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:  # the server's URL; tests want `database_url` for a database of their own
    """SQLAlchemy async URL of a PostgreSQL database that tests may create tables in."""
    configured = os.environ.get("NOTIFY_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    script = REPO / "deploy" / "postgres" / "local-postgres"
    started = subprocess.run([script, "start"], capture_output=True, text=True, check=False)
    if started.returncode != 0:
        pytest.skip(f"no PostgreSQL: set NOTIFY_TEST_DATABASE_URL or fix local-postgres:\n{started.stderr[-2000:]}")
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([script, "stop"], check=False, capture_output=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database for one test: a SQLite file (in a folder not yet created), or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'state' / 'notify.db'}"
        return
    server_url = request.getfixturevalue("postgres_url")
    async with fresh_postgres_database(server_url) as url:
        yield url


# Personal data that appears in the test suite's events (notify_shared.samples and the tests' own factories).
# None of it may reach a log line of ours or of the libraries that see our messages (GDPR: logs hold ids only).
_PERSONAL_DATA = re.compile(
    r"Kari Nordmann|Ola Hansen|Aisha Khan|Piotr Nowak|Olena Kovalenko|Ingrid Bakke"
    r"|[A-Za-z0-9._%+-]+@example\.no|\+47 ?9\d{7}|(?<![\w-])9\d{7}(?![\w-])|Sognsvann|Leirskolen"
)
# The local SMTP server that stands in for the parents' mail provider logs addresses; it is not our code.
_TEST_SINK_LOGGERS = ("mail.log",)
_WATCHED_LOGGERS = (
    "notify_shared",
    "notify_invitations",
    "notify_reminders",
    "notify_digest",
    "notify_responses",
    "faststream",
    "httpx",
    "aiosmtplib",
    "apscheduler",
)
# aiokafka logs whole record values at DEBUG, so the services pin it to WARNING whatever LOG_LEVEL says
# (notify_shared.logs); it is watched at that level here.
_PINNED_LOGGERS = {"aiokafka": logging.WARNING, "aiosqlite": logging.INFO}


@pytest.fixture(autouse=True)
def _no_personal_data_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test, at every level: no name, address, number or message text in a log record of ours."""
    caplog.set_level(logging.INFO)
    for name in _WATCHED_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    for name, level in _PINNED_LOGGERS.items():
        caplog.set_level(level, logger=name)
    # set_level also sets the capturing handler's level, so the last call above left it at WARNING: open it again.
    caplog.handler.setLevel(logging.DEBUG)
    yield
    leaks = [
        f"{record.name}: {record.getMessage()[:200]}"
        for record in (*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records)
        if _PERSONAL_DATA.search(_rendered(record)) and not record.name.startswith(_TEST_SINK_LOGGERS)
    ]
    assert not leaks, "personal data in log lines:\n" + "\n".join(leaks)


def _rendered(record: logging.LogRecord) -> str:
    text = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        text += "\n" + repr(record.exc_info[1])
    return text


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[OwnKafkaBroker]:
    """A Kafka broker of the test's own, which it may stop and start again without disturbing other tests."""
    broker = OwnKafkaBroker(tmp_path / "own-kafka", REPO)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
