"""The parts of `WORKERS` that need no running service: the setting's rules, the merged metrics, the admin port
while workers are starting. tests/test_worker_processes.py runs two real workers on Kafka and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from notify_shared.settings import ServiceSettings
from notify_shared.workers import WorkerSlot
from notify_shared.workers.admin import SupervisorMetrics, WorkersAdmin, WorkerView, merge_expositions

POSTGRES = "postgresql+asyncpg://notify@db.example.internal:5432/notify"


def _exposition(sent: int, latencies: list[float]) -> str:
    registry = CollectorRegistry()
    counter = Counter("notify_notifications", "Notifications recorded.", ["service", "status"], registry=registry)
    counter.labels("invitations", "sent").inc(sent)
    histogram = Histogram("notify_delivery_latency_seconds", "Latency.", ["service"], buckets=(1, 5), registry=registry)
    for latency in latencies:
        histogram.labels("invitations").observe(latency)
    return generate_latest(registry).decode()


def test_one_worker_is_the_default_and_more_need_postgresql() -> None:
    assert ServiceSettings().workers == 1
    assert ServiceSettings(workers=4, database_url=POSTGRES).workers == 4
    with pytest.raises(ValidationError, match="WORKERS=2 needs a PostgreSQL database URL"):
        ServiceSettings(workers=2, database_url="sqlite+aiosqlite:///./notify.db")
    with pytest.raises(ValidationError):
        ServiceSettings(workers=0, database_url=POSTGRES)


def test_a_worker_slot_survives_the_environment_and_refuses_anything_else() -> None:
    slot = WorkerSlot(index=1, count=2, public_fd=5, admin_fd=7, admin_port=40123, supervisor_pid=4242)
    assert WorkerSlot.decode(slot.encode()) == slot
    with pytest.raises(SystemExit, match="not a worker slot"):
        WorkerSlot.decode("1/2/5")


def test_merged_metrics_keep_each_workers_series_under_one_help_and_type() -> None:
    merged = merge_expositions({0: _exposition(3, [0.5]), 1: _exposition(4, [0.5, 2.0])}).decode()

    assert merged.count("# TYPE notify_notifications_total counter") == 1
    assert merged.count("# TYPE notify_delivery_latency_seconds histogram") == 1
    families = {family.name: family for family in text_string_to_metric_families(merged)}
    sent = {
        sample.labels["worker"]: sample.value
        for sample in families["notify_notifications"].samples
        if sample.name == "notify_notifications_total"
    }
    assert sent == {"0": 3.0, "1": 4.0}
    counts = {
        sample.labels["worker"]: sample.value
        for sample in families["notify_delivery_latency_seconds"].samples
        if sample.name == "notify_delivery_latency_seconds_count"
    }
    assert counts == {"0": 1.0, "1": 2.0}


async def test_while_the_workers_start_the_instance_is_alive_but_not_ready() -> None:
    workers = [WorkerView(index=0, admin_port=1, running=False), WorkerView(index=1, admin_port=1, running=False)]
    admin = WorkersAdmin(lambda: workers, SupervisorMetrics("invitations"))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=admin), base_url="http://admin") as client:
            health = await client.get("/healthz")
            ready = await client.get("/readyz")
            metrics = await client.get("/metrics")
            elsewhere = await client.get("/delivery-reports/email")
    finally:
        await admin.aclose()

    assert health.status_code == 200
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "not ready",
        "failed": {"worker 0": "starting or restarting", "worker 1": "starting or restarting"},
    }
    assert 'notify_workers_running{service="invitations"} 0.0' in metrics.text
    assert elsewhere.status_code == 404
