"""What the ingest holds while it runs: the Kafka broker, the accepted-id store, metrics and readiness."""

from __future__ import annotations

import logging

from notify_ingest.auth import ApiKeys
from notify_ingest.ingestion import Ingestor
from notify_ingest.metrics import SERVICE, IngestMetrics
from notify_ingest.publishing import KafkaPublisher
from notify_ingest.settings import IngestSettings
from notify_ingest.store import AcceptedEvents, Clock
from notify_shared.kafka.broker import build_broker
from notify_shared.observability import Readiness
from notify_shared.observability.http import database_check

logger = logging.getLogger(__name__)


class Runtime:
    """Built from the settings; `start` connects Kafka and the database, `stop` lets go of both."""

    def __init__(self, settings: IngestSettings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.api_keys = ApiKeys(settings.api_keys)
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
        self._ingestor = Ingestor(
            store=store,
            publish=KafkaPublisher(self.broker).publish,
            topics=self.settings.topics,
            publish_timeout_seconds=self.settings.publish_timeout_seconds,
        )
        logger.info(
            "ingest started: %d schools have keys; topic prefix %r",
            len(self.settings.api_keys),
            self.settings.topic_prefix,
        )

    async def stop(self) -> None:
        self._ingestor = None
        self.readiness.remove_check("database")
        try:
            await self.broker.stop()
        finally:
            if self._store is not None:
                await self._store.aclose()
                self._store = None
