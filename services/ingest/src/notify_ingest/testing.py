"""The ingest in-process for tests: isolated topics and database, an HTTP client, and what reached Kafka."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from fastapi import FastAPI

from notify_ingest.app import create_app
from notify_ingest.auth import api_key_digest
from notify_ingest.runtime import Runtime
from notify_ingest.settings import IngestSettings
from notify_ingest.store import Clock
from notify_shared import samples
from notify_shared.testing.kafka import create_all_topics

SCHOOL = "nor-0301-bjolsen"
"""The school of every event in `notify_shared.samples`."""
SCHOOL_KEY = "bjolsen-test-key-0123456789abcdef"
OTHER_SCHOOL = "nor-4601-nordnes"
OTHER_SCHOOL_KEY = "nordnes-test-key-0123456789abcdef"
OTHER_SCHOOL_NAME = "Nordnes skole"
OTHER_SCHOOL_SMS_SENDER_ID = "Nordnes"


def isolated_settings(*, kafka_bootstrap: str, work_dir: Path, **overrides: Any) -> IngestSettings:
    """Settings for one test: a fresh topic prefix and database; two schools with keys (as digests), the sample
    school's name and sender id allowed for the first."""
    sample = samples.sample_school()
    fields: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka_bootstrap,
        "topic_prefix": f"t{uuid.uuid4().hex[:8]}.",
        "database_url": f"sqlite+aiosqlite:///{work_dir / 'ingest.db'}",
        "api_keys": {SCHOOL: api_key_digest(SCHOOL_KEY), OTHER_SCHOOL: api_key_digest(OTHER_SCHOOL_KEY)},
        "schools": {
            SCHOOL: {"name": sample.name, "sms_sender_id": sample.sms_sender_id},
            OTHER_SCHOOL: {"name": OTHER_SCHOOL_NAME, "sms_sender_id": OTHER_SCHOOL_SMS_SENDER_ID},
        },
        # The samples are dated in late 2026 whatever the machine's date; a test of the margin sets its own.
        "event_time_future_margin": timedelta(days=3650),
    }
    return IngestSettings(**(fields | overrides))


@dataclass
class RunningIngest:
    """A started app and a client that talks to it in-process (no socket)."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    async def post_event(
        self,
        document: dict[str, Any] | bytes,
        *,
        key: str | None = SCHOOL_KEY,
        content_type: str = "application/cloudevents+json",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST to /v1/events with a bearer key, as an admin system would."""
        sent = dict(headers or {})
        sent.setdefault("Content-Type", content_type)
        if key is not None:
            sent.setdefault("Authorization", f"Bearer {key}")
        if isinstance(document, bytes):
            return await self.client.post("/v1/events", content=document, headers=sent)
        return await self.client.post("/v1/events", json=document, headers=sent)


@asynccontextmanager
async def running_ingest(settings: IngestSettings, *, clock: Clock | None = None) -> AsyncIterator[RunningIngest]:
    """The app with its lifespan run (Kafka and database connected) until the block ends."""
    await create_all_topics(settings.kafka_bootstrap_servers, settings.topics)
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            yield RunningIngest(app, client)


async def records_on(bootstrap: str, topic: str, *, within: float = 30.0) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on `topic` up to its end as of the call: publishes already confirmed are all there."""
    # Subscribed without a group: the consumer is given every partition of the topic as it starts.
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        async with asyncio.timeout(within):
            while not consumer.assignment():  # the topic's metadata has not come yet
                await consumer.getmany(timeout_ms=100)
            partitions = list(consumer.assignment())
            await consumer.seek_to_beginning(*partitions)  # whatever that wait may have fetched is read again
            end = await consumer.end_offsets(partitions)
            # The next offset still to read on each partition; done when every one has reached the end.
            wanted = await consumer.beginning_offsets(partitions)
            records: list[ConsumerRecord[bytes, bytes]] = []
            while any(wanted[partition] < end[partition] for partition in partitions):
                for partition, batch in (await consumer.getmany(timeout_ms=200)).items():
                    records.extend(record for record in batch if record.offset < end[partition])
                    wanted[partition] = batch[-1].offset + 1
        return records
    finally:
        await consumer.stop()
