"""What every service does at start-up for safety, on the real broker: the admin port apart from the public one,
a retention on the dead-letter topic, and a warning when messages would only reach the development outbox."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from notify_shared.kafka.dead_letter_topic import ensure_dead_letter_retention
from notify_shared.kafka.service_app import ServiceAsgiApp, build_service_app
from notify_shared.settings import ServiceSettings
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _settings(kafka_bootstrap: str, tmp_path: Path, **extra: object) -> ServiceSettings:
    return ServiceSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"svc-{uuid.uuid4().hex[:10]}.",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'service.db'}",
        outbox_dir=tmp_path / "outbox",
        **extra,  # type: ignore[arg-type]
    )


async def _topic_configs(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    ((_error, _message, _type, _name, entries),) = response.resources
    return {name: value for name, value, *_ in entries}


@pytest.fixture
async def running_service(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[tuple[int, int]]:
    """A service app served as `faststream run` serves it, on a public and an admin port."""
    public, admin = _free_port(), _free_port()
    settings = _settings(kafka_bootstrap, tmp_path, http_host="127.0.0.1", http_port=public, admin_port=admin)
    parts = build_service_app(settings, service="invitations", title="t", description="d")
    assert isinstance(parts.app, ServiceAsgiApp)
    server = asyncio.create_task(parts.app.run())

    async def listening() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"http://127.0.0.1:{admin}/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    try:
        await wait_until(listening, within=30, what="the service's admin port")
        yield public, admin
    finally:
        parts.app.exit()
        await asyncio.wait_for(server, timeout=60)


async def test_metrics_and_readiness_answer_only_on_the_admin_port(running_service: tuple[int, int]) -> None:
    public, admin = running_service

    async with httpx.AsyncClient() as client:
        on_admin = {path: await client.get(f"http://127.0.0.1:{admin}{path}") for path in ("/metrics", "/readyz")}
        on_public = {path: await client.get(f"http://127.0.0.1:{public}{path}") for path in ("/metrics", "/readyz")}
        public_health = await client.get(f"http://127.0.0.1:{public}/healthz")

    assert on_admin["/metrics"].status_code == 200
    assert "notify_notifications_total" in on_admin["/metrics"].text
    assert on_admin["/readyz"].json()["status"] in ("ready", "not ready")
    assert {path: answer.status_code for path, answer in on_public.items()} == {"/metrics": 404, "/readyz": 404}
    assert on_public["/metrics"].json() == {"error": "not found", "path": "/metrics"}
    assert public_health.text == "ok\n"


async def test_delivery_report_routes_are_not_served_on_the_admin_port(running_service: tuple[int, int]) -> None:
    public, admin = running_service

    async with httpx.AsyncClient() as client:
        on_admin = await client.post(f"http://127.0.0.1:{admin}/delivery-reports/email", content=b"{}")
        on_public = await client.post(f"http://127.0.0.1:{public}/delivery-reports/email", content=b"{}")

    assert on_admin.json() == {"error": "not found", "path": "/delivery-reports/email"}
    # On the public port the route is there, but off: this service has no delivery report secret.
    assert on_public.json() == {"error": "delivery reports are not enabled on this route"}


def test_faststream_runs_port_option_cannot_take_the_admin_port(tmp_path: Path) -> None:
    settings = ServiceSettings(http_port=8000, admin_port=9000, database_url=f"sqlite+aiosqlite:///{tmp_path}/s.db")
    parts = build_service_app(settings, service="digest", title="t", description="d")

    # As `faststream run … --port 9000` would ask.
    with pytest.raises(SystemExit, match="ADMIN_PORT: must differ from the HTTP port 9000"):
        asyncio.run(parts.app.run(run_extra_options={"port": "9000"}))


async def test_a_service_without_providers_warns_at_start_up_that_messages_only_reach_the_outbox(
    kafka_bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    parts = build_service_app(_settings(kafka_bootstrap, tmp_path), service="reminders", title="t", description="d")

    with caplog.at_level(logging.WARNING, logger="notify_shared.kafka.service_app"):
        async with parts.app:
            pass

    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "no email provider is configured (SMTP_HOST or EMAIL_WEBHOOK_URL)" in warnings[0]
    assert "no SMS provider is configured (SMS_PROVIDER), so SMS go to the development file outbox" in warnings[1]
    assert all("no parent receives them" in warning for warning in warnings)


async def test_a_service_with_real_providers_starts_without_that_warning(
    kafka_bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(
        kafka_bootstrap,
        tmp_path,
        smtp_host="smtp.example.org",
        sms_provider="webhook",
        sms_webhook_url="https://sms-gateway.example.org/send",
    )
    parts = build_service_app(settings, service="reminders", title="t", description="d")

    with caplog.at_level(logging.WARNING, logger="notify_shared.kafka.service_app"):
        async with parts.app:
            pass

    assert not [record for record in caplog.records if "outbox" in record.getMessage()]


async def test_starting_a_service_creates_the_dead_letter_topic_with_the_retention_setting(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_bootstrap, tmp_path, dead_letter_retention=timedelta(days=14))
    parts = build_service_app(settings, service="digest", title="t", description="d")

    async with parts.app:
        pass

    configs = await _topic_configs(kafka_bootstrap, settings.topics.dead_letter)
    assert configs["retention.ms"] == str(14 * 24 * 3600 * 1000)


async def test_an_existing_dead_letter_topic_gets_the_retention_and_keeps_its_other_settings(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_bootstrap, tmp_path, dead_letter_retention=timedelta(days=3))
    topic = settings.topics.dead_letter
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        # As the broker's auto-creation or an operator left it: no retention of its own, one other override.
        await admin.create_topics(
            [NewTopic(topic, num_partitions=1, replication_factor=1, topic_configs={"max.message.bytes": "2000000"})]
        )
    finally:
        await admin.close()

    assert await ensure_dead_letter_retention(settings)
    assert await ensure_dead_letter_retention(settings)  # again, as a second replica would: nothing changes

    configs = await _topic_configs(kafka_bootstrap, topic)
    assert (configs["retention.ms"], configs["max.message.bytes"]) == (str(3 * 24 * 3600 * 1000), "2000000")


async def test_a_broker_that_cannot_be_asked_leaves_a_warning_naming_the_retention_to_set_by_hand(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(f"127.0.0.1:{_free_port()}", tmp_path)

    with caplog.at_level(logging.WARNING, logger="notify_shared.kafka.dead_letter_topic"):
        assert not await ensure_dead_letter_retention(settings)

    assert f"could not set the retention of {settings.topics.dead_letter}" in caplog.text
    assert "retention.ms=1209600000" in caplog.text
