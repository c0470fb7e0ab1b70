"""The meeting.created events a run publishes, and what the sinks' records say of them."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from rich.progress import Progress

from notify_shared import samples
from notify_shared.contract import Channel, MeetingCreated, encode_structured, partition_key
from notify_shared.ledger import DeliveryKey, create_engine, deliveries
from notify_shared.ledger.keys import notification_id_for
from notify_shared.topics import MEETING_CREATED, Topics

TEMPLATE = "meeting_invitation"
CHANNELS = (Channel.EMAIL, Channel.SMS)
# --------------------------------------------------------------------------------------------------- events


@dataclass
class Published:
    """What was published: the event ids and their CloudEvents `time` (unix seconds), in order."""

    event_ids: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    guardians: int = 0

    def guardian_ids(self, index: int) -> list[str]:
        return [f"g-{self.event_ids[index][:8]}-{number}" for number in range(self.guardians)]

    def expected(self) -> dict[str, float]:
        """Notification id → its event's time, for every notification the events ask for."""
        return {
            notification_id_for(
                DeliveryKey(samples.sample_school().id, samples.SOURCE, event_id, guardian, channel.value, TEMPLATE)
            ): at
            for index, (event_id, at) in enumerate(zip(self.event_ids, self.times, strict=True))
            for guardian in self.guardian_ids(index)
            for channel in CHANNELS
        }

    @property
    def notifications(self) -> int:
        return len(self.event_ids) * self.guardians * len(CHANNELS)


def build_event(event_id: str, index: int, guardians: int, now: datetime) -> MeetingCreated:
    """The sample meeting one week ahead; guardians with their own ids, addresses and numbers, email and SMS."""
    recipients = [
        samples.sample_guardian(
            index * guardians + number + 1, guardian_id=f"g-{event_id[:8]}-{number}", channels=list(CHANNELS)
        )
        for number in range(guardians)
    ]
    meeting = samples.upcoming_meeting(f"m-bench-{event_id[:8]}-{index}", now)
    return samples.meeting_created(event_id=event_id, meeting=meeting, recipients=recipients, time=now)


async def publish(
    bootstrap: str,
    topics: Topics,
    count: int,
    guardians: int,
    progress: Progress,
    *,
    rate: float | None = None,
    what: str = "publish",
) -> Published:
    """Publish `count` events, as fast as possible or `rate` per second; `time` is each event's publish moment."""
    published = Published(guardians=guardians)
    # Idempotent with acks=all as an admin system should; no lingering in paced mode, so `time` is the send.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=0 if rate else 5, max_batch_size=262_144
    )
    await producer.start()
    task = progress.add_task(what, total=count, rate="")
    topic = topics.for_event_type(MEETING_CREATED)
    pending: list[asyncio.Future[Any]] = []
    started = time.perf_counter()
    try:
        for index in range(count):
            if rate:
                delay = started + index / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            event_id = str(uuid.uuid4())
            now = datetime.now(UTC)
            event = build_event(event_id, index, guardians, now)
            value, headers = encode_structured(event)
            pending.append(await producer.send(topic, value, key=partition_key(event), headers=headers))
            published.event_ids.append(event_id)
            published.times.append(now.timestamp())
            published.bytes += len(value)
            if len(pending) >= (20 if rate else 1000):
                await asyncio.gather(*pending)
                pending.clear()
                elapsed = time.perf_counter() - started
                progress.update(task, completed=index + 1, rate=f"{(index + 1) / max(elapsed, 1e-9):,.0f}/s")
        await asyncio.gather(*pending)
        progress.update(task, completed=count)
    finally:
        await producer.stop()
        progress.remove_task(task)
    published.seconds = time.perf_counter() - started
    return published


# ------------------------------------------------------------------------------------------------ analysis


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted `values` (not empty)."""
    rank = max(1, math.ceil(fraction * len(values)))
    return values[min(rank, len(values)) - 1]


def distribution_ms(values: Iterable[float]) -> dict[str, float]:
    ordered = sorted(value * 1000 for value in values)
    if not ordered:
        return {}
    return {
        "count": len(ordered),
        "p50": percentile(ordered, 0.50),
        "p95": percentile(ordered, 0.95),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1],
        "mean": sum(ordered) / len(ordered),
    }


def analyse(records: list[tuple[str, str, float]], expected: dict[str, float]) -> dict[str, Any]:
    """Throughput from the sinks' records, duplicates and gaps against what was published, and latency
    (acceptance − event time, first acceptance of each notification)."""
    by_channel: dict[str, list[float]] = {channel.value: [] for channel in CHANNELS}
    keys: Counter[str] = Counter()
    first_acceptance: dict[str, tuple[str, float]] = {}
    for channel, key, at in records:
        by_channel.setdefault(channel, []).append(at)
        keys[key] += 1
        if key not in first_acceptance or at < first_acceptance[key][1]:
            first_acceptance[key] = (channel, at)
    times = sorted(at for _, _, at in records)
    figures: dict[str, Any] = {
        "accepted": len(records),
        "accepted_by_channel": {channel: len(values) for channel, values in by_channel.items()},
        "unique_keys": len(keys),
        "duplicates": sum(count - 1 for count in keys.values() if count > 1),
        "missing": sum(1 for key in expected if key not in keys),
        "unexpected": sum(1 for key in keys if key not in expected),
    }
    if len(times) >= 2:
        window = times[-1] - times[0]
        figures |= {
            "first_to_last_seconds": window,
            "notifications_per_second": len(records) / max(window, 1e-9),
            "per_channel_per_second": {
                channel: len(values) / max(window, 1e-9) for channel, values in by_channel.items()
            },
            "first_acceptance": times[0],
            "last_acceptance": times[-1],
        }
    latencies: dict[str, list[float]] = {channel.value: [] for channel in CHANNELS}
    for key, (channel, at) in first_acceptance.items():
        if key in expected:
            latencies.setdefault(channel, []).append(at - expected[key])
    figures["latency_ms"] = {
        "all": distribution_ms(value for values in latencies.values() for value in values),
        **{channel: distribution_ms(values) for channel, values in latencies.items()},
    }
    return figures


async def ledger_summary(database_url: str) -> dict[str, int]:
    """Rows of the delivery ledger by channel and status, read after the service stopped."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                sa.select(deliveries.c.channel, deliveries.c.status, sa.func.count()).group_by(
                    deliveries.c.channel, deliveries.c.status
                )
            )
            return {f"{row[0]}:{row[1]}": int(row[2]) for row in rows}
    finally:
        await engine.dispose()
