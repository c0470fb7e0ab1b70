"""The platform's Prometheus metrics, one registry per app (tests build several apps in one process).

Labels name kinds of things only (service, event type, channel, template, language, status): never an id, an
address, a phone number or a name, so the exposition holds no personal data.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

logger = logging.getLogger(__name__)

Refresh = Callable[[], Awaitable[None]]

# Event time to the provider's acceptance: seconds for instant sends, up to days for reminders and digests.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400)


class ServiceMetrics:
    """A service's metrics and the registry they live in; also the dispatcher's `DeliveryMetrics` hook."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._refreshers: list[Refresh] = []
        self.notifications = Counter(
            "notify_notifications",
            "Notifications recorded, by channel, template, language and final status.",
            ["service", "channel", "template", "language", "status"],
            registry=self.registry,
        )
        self.delivery_latency = Histogram(
            "notify_delivery_latency_seconds",
            "Seconds from the source event's time to the provider's acceptance.",
            ["service", "channel", "template"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.retries = Counter(
            "notify_delivery_retries",
            "Sends tried again after a transient provider error.",
            ["service", "channel", "template"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "notify_dead_letters",
            "Records published to the dead-letter topic.",
            ["service", "reason"],
            registry=self.registry,
        )
        self.status_events_waiting = self.gauge(
            "notify_status_events_waiting",
            "Status events Kafka refused, kept in the database until they can be published.",
        )

    def consumer_middleware(self) -> KafkaPrometheusMiddleware:
        """FastStream's consumer and publisher metrics (`faststream_*`) in this registry.

        Consumed events are counted per topic (the `handler` label), and each input topic carries one event type.
        """
        return KafkaPrometheusMiddleware(registry=self.registry, app_name=f"notify-{self.service}")

    def gauge(self, name: str, documentation: str, labelnames: tuple[str, ...] = ()) -> Gauge:
        """A gauge in this registry, labelled by service and `labelnames`; set it from an `on_scrape` refresh."""
        return Gauge(name, documentation, ["service", *labelnames], registry=self.registry)

    def on_scrape(self, refresh: Refresh) -> None:
        """Run `refresh` (e.g. a store count that sets a gauge) before each rendering of the metrics."""
        self._refreshers.append(refresh)

    def watch_consumer_lag(self, broker: KafkaBroker) -> None:
        """`notify_consumer_lag` per assigned partition, refreshed on scrape: end offset minus committed offset."""
        lag = self.gauge(
            "notify_consumer_lag", "Records not yet committed by this replica's consumer group.", ("topic", "partition")
        )

        async def refresh() -> None:
            lag.clear()  # partitions move between replicas on a rebalance; report only the ones assigned here
            for subscriber in broker.subscribers:
                # FastStream's subscriber holds its aiokafka consumer while started (None otherwise).
                consumer: Any = getattr(subscriber, "consumer", None)
                if consumer is None:
                    continue
                partitions = list(consumer.assignment())
                if not partitions:
                    continue
                end_offsets = await consumer.end_offsets(partitions)
                first_offsets: dict[Any, int] | None = None
                for partition in partitions:
                    committed = await consumer.committed(partition)
                    if committed is None:
                        # Nothing committed yet by this group: it starts from the earliest record, so all of
                        # them wait (a partition whose first event never finishes must show, not hide).
                        first_offsets = first_offsets or await consumer.beginning_offsets(partitions)
                        committed = first_offsets[partition]
                    lag.labels(self.service, partition.topic, str(partition.partition)).set(
                        max(end_offsets[partition] - committed, 0)
                    )

        self.on_scrape(refresh)

    async def render(self) -> bytes:
        """The Prometheus text exposition, after running every scrape refresh (a failing one is logged)."""
        for refresh in self._refreshers:
            try:
                await refresh()
            except Exception:
                logger.exception("a metrics refresh failed; its gauges keep their last values")
        return generate_latest(self.registry)

    # The dead-letter sink's and the dispatcher's hooks (`notify_shared.delivery.reporting.DeliveryMetrics`).

    def dead_lettered(self, reason: str) -> None:
        self.dead_letters.labels(self.service, reason).inc()

    def notification_recorded(
        self,
        *,
        channel: str,
        template: str,
        language: str | None,
        status: str,
        event_time: datetime | None,
        accepted_at: datetime | None,
    ) -> None:
        self.notifications.labels(self.service, channel, template, language or "none", status).inc()
        if event_time is not None and accepted_at is not None:
            seconds = max((accepted_at - event_time).total_seconds(), 0.0)
            self.delivery_latency.labels(self.service, channel, template).observe(seconds)

    def delivery_retried(self, *, channel: str, template: str) -> None:
        self.retries.labels(self.service, channel, template).inc()

    def watch_status_backlog(self, count: Callable[[], Awaitable[int]]) -> None:
        async def refresh() -> None:
            self.status_events_waiting.labels(self.service).set(await count())

        self.on_scrape(refresh)
