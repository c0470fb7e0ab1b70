"""`notify-ingest` serves the API on HTTP_HOST:HTTP_PORT, and the example producer posts to it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from notify_ingest.auth import api_key_digest
from notify_ingest.testing import SCHOOL, SCHOOL_KEY, records_on
from notify_shared.testing.kafka import create_all_topics
from notify_shared.testing.waiting import wait_until
from notify_shared.topics import Topics

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "ingest_producer.py"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def topics() -> Topics:
    return Topics(f"t{uuid.uuid4().hex[:8]}.")


@pytest.fixture
async def served(kafka_bootstrap: str, tmp_path: Path, topics: Topics) -> AsyncIterator[str]:
    """`notify-ingest` in its own process, configured only through the environment; yields its base URL once
    it is ready."""
    await create_all_topics(kafka_bootstrap, topics)
    port, admin_port = _free_port(), _free_port()
    environment = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TOPIC_PREFIX": topics.prefix,
        "INGEST_API_KEYS": json.dumps({SCHOOL: api_key_digest(SCHOOL_KEY)}),
        "INGEST_SCHOOLS": json.dumps({SCHOOL: {"name": "Bjølsen skole", "sms_sender_id": "Bjolsen"}}),
        "INGEST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "ADMIN_PORT": str(admin_port),
    }
    command = Path(sys.executable).parent / "notify-ingest"
    process = await asyncio.create_subprocess_exec(
        command, env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"http://127.0.0.1:{admin_port}/readyz")).status_code == 200
        except httpx.TransportError:
            # Not listening yet: keep waiting while it runs, fail at once if it has stopped.
            if process.returncode is not None:
                raise AssertionError("notify-ingest stopped before it was ready") from None
            return False

    try:
        await wait_until(ready, within=30, what="notify-ingest to be ready")
        yield url
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            output, _ = await process.communicate()
        log = output.decode(errors="replace")
        # uvicorn shuts down gracefully, then re-raises the signal: the exit is the conventional one for SIGTERM.
        assert process.returncode in (0, -signal.SIGTERM), log[-3000:]
        assert "Application shutdown complete" in log
        # Its log holds ids and outcomes only (the sample guardians are invented, but look real).
        assert "Kari" not in log
        assert "@example.no" not in log


async def _run(command: list[str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_the_command_serves_and_the_example_producer_posts_a_sample_once(
    served: str, kafka_bootstrap: str, topics: Topics
) -> None:
    event_id = str(uuid.uuid4())
    post = [sys.executable, str(EXAMPLE), "--url", served, "--api-key", SCHOOL_KEY, "--event-id", event_id]

    first_code, first = await _run(post)
    again_code, again = await _run(post)

    assert first_code == again_code == 0, first + again
    assert first.startswith("202 Accepted")
    assert json.loads(first.split("\n", 1)[1]) == {"id": event_id, "type": "meeting.created", "duplicate": False}
    assert json.loads(again.split("\n", 1)[1])["duplicate"] is True
    records = await records_on(kafka_bootstrap, topics.meeting_created)
    assert [json.loads(record.value)["id"] for record in records] == [event_id]


async def test_the_example_producer_exits_non_zero_with_the_problem_when_the_key_is_wrong(served: str) -> None:
    code, output = await _run([sys.executable, str(EXAMPLE), "--url", served, "--api-key", "not-the-key-of-anyone"])
    assert code == 1
    assert output.startswith("401 Unauthorized")
    assert json.loads(output.split("\n", 1)[1])["error"] == "unauthorized"


async def test_the_command_refuses_to_start_with_the_example_placeholder_key_naming_the_setting(
    tmp_path: Path,
) -> None:
    # The line an operator would keep by copying deploy/k8s/base/secrets.example.env unchanged.
    example = (REPO / "deploy" / "k8s" / "base" / "secrets.example.env").read_text(encoding="utf-8")
    placeholder_keys = next(line for line in example.splitlines() if line.startswith("ingest-api-keys="))
    environment = os.environ | {
        "INGEST_API_KEYS": placeholder_keys.partition("=")[2],
        "INGEST_SCHOOLS": json.dumps({SCHOOL: {"name": "Bjølsen skole", "sms_sender_id": "Bjolsen"}}),
        "INGEST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}",
    }
    process = await asyncio.create_subprocess_exec(
        Path(sys.executable).parent / "notify-ingest",
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        output, _ = await process.communicate()

    assert process.returncode == 2
    message = output.decode()
    assert "INGEST_API_KEYS" in message
    assert f"the key of ['{SCHOOL}'] is the example placeholder" in message


async def test_metrics_and_readiness_are_not_on_the_public_port(served: str) -> None:
    async with httpx.AsyncClient() as client:
        answers = {path: await client.get(f"{served}{path}") for path in ("/metrics", "/readyz", "/healthz")}

    assert {path: answer.status_code for path, answer in answers.items()} == {
        "/metrics": 404,
        "/readyz": 404,
        "/healthz": 200,
    }
    assert answers["/metrics"].json() == {"error": "not found", "path": "/metrics"}
