"""What the ingest holds while it runs: the Kafka broker, the accepted-id store, metrics and readiness."""

from __future__ import annotations

import logging

from notify_ingest.auth import ApiKeys
from notify_ingest.ingestion import Ingestor
from notify_ingest.metrics import SERVICE, IngestMetrics
from notify_ingest.policy import SchoolPolicy
from notify_ingest.publishing import KafkaPublisher
from notify_ingest.ratelimit import FailedKeyLimits, KeyRateLimits
from notify_ingest.retention import rules as retention_rules
from notify_ingest.settings import IngestSettings
from notify_ingest.store import AcceptedEvents, Clock
from notify_shared.kafka.broker import build_broker
from notify_shared.kafka.event_time import EventTimeLimit
from notify_shared.observability import Readiness
from notify_shared.observability.http import database_check
from notify_shared.retention.job import Retention, RetentionSchedule

logger = logging.getLogger(__name__)


class Runtime:
    """Built from the settings; `start` connects Kafka and the database, `stop` lets go of both."""

    def __init__(self, settings: IngestSettings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.api_keys = ApiKeys(settings.api_keys)
        self.key_rate_limits = KeyRateLimits(rate_per_second=settings.rate_per_second, burst=settings.rate_burst)
        self.failed_key_limits = FailedKeyLimits(
            limit=settings.auth_failure_limit, window_seconds=settings.auth_failure_window.total_seconds()
        )
        self.policy = SchoolPolicy(settings.schools, settings.sms_countries)
        self.metrics = IngestMetrics()
        # A plain broker from the shared builder rather than FastStream's KafkaRouter for FastAPI: the ingest only
        # publishes, and build_broker is where the project sets the acks=all producer and the Kafka
        # security settings; the router would build a second, differently configured broker and add AsyncAPI
        # routes that describe nothing here.
        self.broker = build_broker(
            settings, client_id=f"notify-{SERVICE}", middlewares=(self.metrics.consumer_middleware(),)
        )
        self.readiness = Readiness(self.broker)
        self._clock = clock
        self._store: AcceptedEvents | None = None
        self._retention: RetentionSchedule | None = None
        self._ingestor: Ingestor | None = None

    @property
    def store(self) -> AcceptedEvents:
        if self._store is None:
            raise RuntimeError("the ingest is not started")
        return self._store

    @property
    def ingestor(self) -> Ingestor:
        if self._ingestor is None:
            raise RuntimeError("the ingest is not started")
        return self._ingestor

    async def start(self) -> None:
        lease = self.settings.claim_lease_seconds
        if self._clock is None:
            store = await AcceptedEvents.connect(self.settings.database_url, lease_seconds=lease)
        else:
            store = await AcceptedEvents.connect(self.settings.database_url, lease_seconds=lease, clock=self._clock)
        try:
            await self.broker.start()
        except BaseException:
            await store.aclose()
            raise
        self._store = store
        self.readiness.add_check("database", database_check(store.engine))
        retention = Retention(store.engine, retention_rules(), self.settings.retention_windows)
        self._retention = RetentionSchedule(
            retention, service=SERVICE, interval=self.settings.retention_interval, registry=self.metrics.registry
        )
        self._retention.start()
        margin = self.settings.event_time_future_margin
        event_time = EventTimeLimit(margin) if self._clock is None else EventTimeLimit(margin, self._clock)
        self._ingestor = Ingestor(
            store=store,
            publish=KafkaPublisher(self.broker).publish,
            topics=self.settings.topics,
            publish_timeout_seconds=self.settings.publish_timeout_seconds,
            policy=self.policy.problems,
            event_time=event_time,
        )
        logger.info(
            "ingest started: %d schools have keys; topic prefix %r; SMS numbers of %s only",
            len(self.settings.api_keys),
            self.settings.topic_prefix,
            ",".join(sorted(self.settings.sms_countries)),
        )
        if self.settings.plain_key_schools:
            logger.warning(
                "INGEST_API_KEYS holds plain keys for %s: replace each by its sha256: digest (docs/ingest.md)",
                self.settings.plain_key_schools,
            )

    async def stop(self) -> None:
        self._ingestor = None
        if self._retention is not None:
            await self._retention.stop()
            self._retention = None
        self.readiness.remove_check("database")
        try:
            await self.broker.stop()
        finally:
            if self._store is not None:
                await self._store.aclose()
                self._store = None
