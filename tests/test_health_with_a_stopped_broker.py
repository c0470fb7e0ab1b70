"""The health endpoints of a running service follow its broker: /readyz goes 503 naming Kafka while the broker is
stopped and 200 again once it is back; /healthz stays 200 throughout (the process itself is fine)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from faststream.asgi import AsgiFastStream

from notify_invitations.testing import Deployment, isolated_settings
from notify_shared.testing.faults import OwnKafkaBroker
from notify_shared.testing.kafka import create_all_topics
from notify_shared.testing.sinks import sms_sink, smtp_sink
from notify_shared.testing.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]


async def _status(app: AsgiFastStream, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client:
        return await client.get(path)


async def test_readyz_follows_the_broker_while_healthz_stays_up(own_broker: OwnKafkaBroker, tmp_path: Path) -> None:
    with smtp_sink() as smtp, sms_sink() as sms:
        settings = isolated_settings(kafka_bootstrap=own_broker.bootstrap, work_dir=tmp_path, smtp=smtp, sms=sms)
        await create_all_topics(own_broker.bootstrap, settings.topics)
        async with Deployment(settings, smtp, sms).running() as app:

            async def ready_is(code: int) -> bool:
                return (await _status(app, "/readyz")).status_code == code

            await wait_until(lambda: ready_is(200), within=30, what="/readyz 200 with the broker up")

            await asyncio.to_thread(own_broker.stop)
            await wait_until(lambda: ready_is(503), within=60, what="/readyz 503 with the broker stopped")
            down = await _status(app, "/readyz")
            assert "kafka" in down.json()["failed"]
            assert "database" not in down.json()["failed"]
            assert (await _status(app, "/healthz")).status_code == 200

            await asyncio.to_thread(own_broker.start)
            await wait_until(lambda: ready_is(200), within=90, what="/readyz 200 once the broker is back")
