"""Kafka over TLS and SASL/SCRAM, configured only through KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and
KAFKA_SSL_CAFILE, against a real broker with secure listeners (`KAFKA_SECURE=1 deploy/kafka/local-kafka start`).

One secure broker serves the whole session (it starts in about 5 s): SASL_SSL with SCRAM-SHA-512 and
SCRAM-SHA-256, and SSL without SASL, both with a certificate from a throwaway CA the script makes.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from faststream.asgi import AsgiFastStream
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from notify_invitations.testing import Deployment, isolated_settings
from notify_shared import samples
from notify_shared.cli import app as notify_cli
from notify_shared.cli.dlq import read_dead_letters
from notify_shared.kafka import build_broker, kafka_client_options
from notify_shared.settings import ServiceSettings
from notify_shared.testing.kafka import EventPublisher, TopicReader, create_all_topics, create_topics
from notify_shared.testing.sinks import sms_sink, smtp_sink
from notify_shared.testing.waiting import wait_until

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[1]
SCRAM_USER = "notify-test"


@dataclass(frozen=True)
class SecureKafka:
    """The secure broker's listeners, its CA, and the one SCRAM user it knows."""

    sasl_ssl: str
    ssl: str
    ca_file: Path
    username: str
    password: str

    def security(
        self, protocol: str = "SASL_SSL", mechanism: str | None = "SCRAM-SHA-512", **overrides: Any
    ) -> dict[str, Any]:
        """The settings' fields for `protocol`, as an operator sets them in the environment."""
        fields: dict[str, Any] = {
            "kafka_bootstrap_servers": self.ssl if protocol == "SSL" else self.sasl_ssl,
            "kafka_security_protocol": protocol,
            "kafka_ssl_cafile": self.ca_file,
        }
        if protocol.startswith("SASL"):
            fields |= {
                "kafka_sasl_mechanism": mechanism,
                "kafka_sasl_username": self.username,
                "kafka_sasl_password": SecretStr(self.password),
            }
        return fields | overrides

    def settings(
        self, protocol: str = "SASL_SSL", mechanism: str | None = "SCRAM-SHA-512", **overrides: Any
    ) -> ServiceSettings:
        return ServiceSettings(**self.security(protocol, mechanism, **overrides))


def _free_ports(count: int) -> list[int]:
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:  # held open together, so the ports differ
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


@pytest.fixture(scope="session")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    """A second local broker, with SASL_SSL and SSL listeners, for the whole session."""
    if shutil.which("openssl") is None:
        pytest.skip("the secure broker needs openssl to make its certificates")
    port, controller_port, sasl_ssl_port, ssl_port = _free_ports(4)
    password = secrets.token_urlsafe(16)
    environment = os.environ | {
        "KAFKA_STATE_DIR": str(tmp_path_factory.mktemp("kafka-secure")),
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(controller_port),
        "KAFKA_SECURE": "1",
        "KAFKA_SASL_SSL_PORT": str(sasl_ssl_port),
        "KAFKA_SSL_PORT": str(ssl_port),
        "KAFKA_SCRAM_USERNAME": SCRAM_USER,
        "KAFKA_SCRAM_PASSWORD": password,
    }
    script = REPO / "deploy" / "kafka" / "local-kafka"
    started = subprocess.run([script, "start"], env=environment, capture_output=True, text=True, check=False)
    if started.returncode != 0:
        pytest.fail(f"could not start the secure local Kafka broker:\n{started.stdout}\n{started.stderr}")
    try:
        printed = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
        yield SecureKafka(
            sasl_ssl=printed["KAFKA_SASL_SSL_BOOTSTRAP"],
            ssl=printed["KAFKA_SSL_BOOTSTRAP"],
            ca_file=Path(printed["KAFKA_SSL_CAFILE"]),
            username=printed["KAFKA_SASL_USERNAME"],
            password=password,
        )
    finally:
        subprocess.run([script, "stop"], env=environment, check=False, capture_output=True)


def _topic(kind: str) -> str:
    return f"security-{kind}-{uuid.uuid4().hex[:8]}"


async def _round_trip(settings: ServiceSettings, topic: str) -> dict[str, str]:
    """Publish one record through a broker built by `build_broker` and consume it with a subscriber of the same."""
    await create_topics(settings.kafka_bootstrap_servers, [topic], client_options=kafka_client_options(settings))
    broker = build_broker(settings, client_id="notify-security-test")
    received: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()

    @broker.subscriber(topic, group_id=f"{topic}-group", auto_offset_reset="earliest")
    async def handle(body: dict[str, str]) -> None:
        if not received.done():
            received.set_result(body)

    async with broker:
        await broker.start()
        await broker.publish({"notification_id": "ntf-security-1"}, topic=topic, key=b"m-1")
        return await asyncio.wait_for(received, timeout=30)


@pytest.mark.parametrize(
    ("protocol", "mechanism"),
    [("SASL_SSL", "SCRAM-SHA-512"), ("SASL_SSL", "SCRAM-SHA-256"), ("SSL", None)],
    ids=["sasl-ssl-scram-sha-512", "sasl-ssl-scram-sha-256", "ssl"],
)
async def test_a_record_goes_through_the_secure_listener_as_the_settings_say(
    secure_kafka: SecureKafka, protocol: str, mechanism: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    settings = secure_kafka.settings(protocol, mechanism)

    body = await _round_trip(settings, _topic(protocol.lower()))

    assert body == {"notification_id": "ntf-security-1"}
    assert secure_kafka.password not in caplog.text


async def _start_fails(settings: ServiceSettings) -> None:
    """Starting a broker built from `settings` fails, with aiokafka's connection error, well within 30 s."""
    broker = build_broker(settings, client_id="notify-security-test")
    try:
        # Bounded: a broker that never answers must not hang the test (or a service's start-up).
        async with asyncio.timeout(30):
            with pytest.raises(KafkaConnectionError):
                await broker.start()
    finally:
        await broker.stop()


async def test_a_wrong_password_fails_start_up_at_once_and_the_log_says_it_was_the_login(
    secure_kafka: SecureKafka, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "not-" + secure_kafka.password
    loop = asyncio.get_running_loop()
    started = loop.time()

    await _start_fails(secure_kafka.settings(kafka_sasl_password=SecretStr(wrong)))

    assert loop.time() - started < 15
    assert "Authentication failed during authentication due to invalid credentials" in caplog.text
    assert wrong not in caplog.text
    assert secure_kafka.password not in caplog.text


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SSL"])
async def test_a_broker_certificate_from_a_ca_not_configured_is_refused_before_any_login(
    secure_kafka: SecureKafka, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    # No KAFKA_SSL_CAFILE: the system's CAs, which never signed the throwaway CA's certificate.
    await _start_fails(secure_kafka.settings(protocol, kafka_ssl_cafile=None))

    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    assert secure_kafka.password not in caplog.text


async def test_plaintext_to_a_tls_listener_fails_rather_than_hangs(secure_kafka: SecureKafka) -> None:
    await _start_fails(
        ServiceSettings(kafka_bootstrap_servers=secure_kafka.sasl_ssl, kafka_security_protocol="PLAINTEXT")
    )


# ------------------------------------------------------------------------------------------ one whole service


async def _get(app: AsgiFastStream, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://invitations") as client:
        return await client.get(path)


def _lag(exposition: str, topic: str) -> list[float]:
    return [
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "notify_consumer_lag" and sample.labels["topic"] == topic
    ]


def _notify(environment: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(notify_cli, list(args), env={"COLUMNS": "250", **environment})


async def test_the_invitations_service_runs_whole_over_sasl_ssl(secure_kafka: SecureKafka, tmp_path: Path) -> None:
    """Consumers, status publisher, dead-letter sink, readiness, lag metrics and `notify dlq`: all on SASL_SSL."""
    with smtp_sink() as smtp, sms_sink() as sms:
        plain = isolated_settings(kafka_bootstrap=secure_kafka.sasl_ssl, work_dir=tmp_path, smtp=smtp, sms=sms)
        settings = plain.model_copy(update=secure_kafka.security())
        deployment = Deployment(settings, smtp, sms)
        bootstrap, topics, options = settings.kafka_bootstrap_servers, settings.topics, kafka_client_options(settings)
        await create_all_topics(bootstrap, topics, client_options=options)
        event = samples.meeting_created()

        async with (
            deployment.running() as app,
            EventPublisher(bootstrap, topics, client_options=options) as publisher,
            TopicReader(bootstrap, topics.notification_status, client_options=options) as statuses,
        ):
            ready = await _get(app, "/readyz")
            assert ready.status_code == 200, ready.text

            await publisher.publish_raw(topics.meeting_created, b'{"specversion": "1.0", "id": ', key=b"m-1")
            await publisher.publish(event)
            await wait_until(
                lambda: len(smtp.received) == 2 and len(sms.messages()) == 2, what="two emails and two SMS"
            )

            async def four_statuses() -> bool:
                return len(await statuses.poll()) >= 4

            await wait_until(four_statuses, what="a status per guardian and channel")

            async def caught_up() -> bool:
                lag = _lag((await _get(app, "/metrics")).text, topics.meeting_created)
                return len(lag) == 3 and not any(lag)

            await wait_until(caught_up, what="the consumer lag of every partition, at 0")
            letters = await read_dead_letters(bootstrap, topics.dead_letter, max_seconds=10, client_options=options)

            # The `notify` command, with the same environment variables as the service.
            environment = {
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "TOPIC_PREFIX": topics.prefix,
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                "KAFKA_SASL_USERNAME": secure_kafka.username,
                "KAFKA_SASL_PASSWORD": secure_kafka.password,
                "KAFKA_SSL_CAFILE": str(secure_kafka.ca_file),
            }
            listed = await asyncio.to_thread(_notify, environment, "dlq", "list")
            replayed = await asyncio.to_thread(_notify, environment, "dlq", "replay", "--all")

            async def dead_lettered_again() -> bool:
                again = await read_dead_letters(bootstrap, topics.dead_letter, max_seconds=10, client_options=options)
                return len(again) == 2

            await wait_until(dead_lettered_again, what="the replayed record dead-lettered again")

    assert sorted(item.envelope_to[0] for item in smtp.received) == ["guardian1@example.no", "guardian2@example.no"]
    assert {status["data"]["status"] for status in statuses.records} == {"sent"}
    assert [letter.event.data.reason for letter in letters if letter.event is not None] == ["malformed_json"]
    assert listed.exit_code == 0, listed.output
    assert "malformed_json" in listed.output
    assert replayed.exit_code == 0, replayed.output
    assert "1 replayed" in replayed.output
