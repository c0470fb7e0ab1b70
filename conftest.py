"""Fixtures every test folder shares: a real Kafka broker and, where wanted, PostgreSQL.

Kafka comes from, in this order: `KAFKA_BOOTSTRAP_SERVERS` when set (the test command sets it after starting the
local broker); testcontainers' Kafka module when a Docker engine answers; otherwise the local broker from
`deploy/kafka/local-kafka`, started here for the session on a port of its own.
PostgreSQL comes from `NOTIFY_TEST_DATABASE_URL` when set, otherwise from `deploy/postgres/local-postgres`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent


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
def postgres_url() -> Iterator[str]:
    """SQLAlchemy async URL of a PostgreSQL database that tests may create tables in."""
    configured = os.environ.get("NOTIFY_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    script = REPO / "deploy" / "postgres" / "local-postgres"
    started = subprocess.run([script, "start"], capture_output=True, text=True, check=False)
    if started.returncode != 0:
        pytest.skip(f"no PostgreSQL: set NOTIFY_TEST_DATABASE_URL or fix local-postgres:\n{started.stderr[-2000:]}")
    yield started.stdout.strip().splitlines()[-1]
