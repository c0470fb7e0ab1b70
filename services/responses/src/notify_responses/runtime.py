"""What the responses service holds while it runs: the broker, the database, the relay, metrics and limits."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime

from notify_responses.auto_replies import AutoReplier, AutoReplyMode
from notify_responses.auto_reply_cap import DailyAutoReplyCap
from notify_responses.handlers import build_router
from notify_responses.metrics import SERVICE, ResponsesMetrics
from notify_responses.ratelimit import WindowLimit
from notify_responses.relay import OutboxRelay
from notify_responses.relay_lease import RelayLease
from notify_responses.retention import rules as retention_rules
from notify_responses.service import Clock, ResponsesService
from notify_responses.settings import ResponsesSettings
from notify_responses.store import OutboxEvent, ResponseStore
from notify_responses.talks_closing import RoundCloser
from notify_responses.talks_confirmations import TalkChange, TalkConfirmer
from notify_responses.talks_handlers import build_talks_router
from notify_responses.talks_invitations import BookingInviter
from notify_responses.talks_service import TalksService
from notify_responses.talks_store import TalkStore, create_talk_tables
from notify_shared.answer_links import AnswerLinkKeys
from notify_shared.contract import (
    CLOUDEVENTS_JSON,
    MeetingRsvp,
    NotificationDeadLettered,
    NotificationStatus,
    SmsReplyUnrecognised,
    TalkBooked,
    TalkCancelled,
    TalkMoved,
    TalksRoundClosed,
)
from notify_shared.delivery import RetryWorker
from notify_shared.delivery.assembly import open_dispatcher, retry_worker_for
from notify_shared.kafka.broker import build_broker
from notify_shared.kafka.decompression import install_decompression_limit
from notify_shared.kafka.outbound import KafkaDeadLetterSink, KafkaStatusSink
from notify_shared.ledger.retention import ledger_rules
from notify_shared.observability import Readiness
from notify_shared.observability.http import database_check
from notify_shared.retention.job import Retention, RetentionSchedule
from notify_shared.topics import SMS_REPLY_UNRECOGNISED, TALK_BOOKED, TALK_CANCELLED, TALK_MOVED, TALKS_ROUND_CLOSED

logger = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 10.0
"""One publish to Kafka may take this long before the relay counts it as failed and backs off."""
AUTO_REPLY_CONCURRENCY = 4
"""Notifications sent at once: automatic SMS answers and talk confirmations, each sent while its request waits."""


class Runtime:
    """Built from the settings; `start` opens the database, the broker (consuming meetings) and the relay."""

    def __init__(self, settings: ResponsesSettings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.keys = AnswerLinkKeys.from_settings(settings)
        self.metrics = ResponsesMetrics()
        self.client_limit = WindowLimit(settings.requests_per_client_per_minute, 60)
        self.link_limit = WindowLimit(settings.answers_per_link_per_hour, 3600)
        self.broker = build_broker(
            settings, client_id=f"notify-{SERVICE}", middlewares=(self.metrics.consumer_middleware(),)
        )
        topics = settings.topics
        self._rsvp = self.broker.publisher(
            topics.meeting_rsvp,
            schema=MeetingRsvp,
            title=f"{SERVICE}:meeting.rsvp",
            description="Each guardian's latest answer to an invitation, keyed by meeting id.",
        )
        self._unrecognised = self.broker.publisher(
            topics.sms_reply_unrecognised,
            schema=SmsReplyUnrecognised,
            title=f"{SERVICE}:sms.reply-unrecognised",
            description="SMS replies that could not be read as an answer, for the school to read.",
        )
        self._status = KafkaStatusSink(
            self.broker.publisher(
                topics.notification_status,
                schema=NotificationStatus,
                title=f"{SERVICE}:notification.status",
                description="The automatic SMS answers to SMS replies, step by step (ids only).",
            ),
            service=SERVICE,
        )
        # Development talks (docs/talks.md): what guardians booked, moved or cancelled, keyed by round id.
        self._talk_publishers = {
            event_type: self.broker.publisher(
                topics.for_event_type(event_type),
                schema=schema,
                title=f"{SERVICE}:{event_type}",
                description=description,
            )
            for event_type, schema, description in (
                (TALK_BOOKED, TalkBooked, "A guardian booked a development talk for a pupil, keyed by round id."),
                (TALK_MOVED, TalkMoved, "A guardian moved a pupil's development talk, keyed by round id."),
                (TALK_CANCELLED, TalkCancelled, "A pupil's development talk was cancelled, keyed by round id."),
                (TALKS_ROUND_CLOSED, TalksRoundClosed, "Booking closed: the pupils still without a talk, by round id."),
            )
        }
        # A compressed batch is decompressed only up to KAFKA_MAX_RECORD_BYTES, as in every other service.
        install_decompression_limit(settings.kafka_max_record_bytes)
        dead_letters = KafkaDeadLetterSink(
            self.broker.publisher(topics.dead_letter, schema=NotificationDeadLettered),
            on_published=self.metrics.dead_lettered,
        )
        self.broker.include_router(
            build_router(
                topics=topics,
                group_id=settings.consumer_group,
                dead_letters=dead_letters,
                service=lambda: self.service,
                max_record_bytes=settings.kafka_max_record_bytes,
            )
        )
        self.broker.include_router(
            build_talks_router(
                topics=topics,
                group_id=settings.consumer_group,
                dead_letters=dead_letters,
                service=lambda: self.talks,
                max_record_bytes=settings.kafka_max_record_bytes,
            )
        )
        self.metrics.watch_consumer_lag(self.broker)
        self.readiness = Readiness(self.broker)
        self._clock = clock
        self._store: ResponseStore | None = None
        self._service: ResponsesService | None = None
        self._talks: TalksService | None = None
        self._relay: OutboxRelay | None = None
        self._retention: RetentionSchedule | None = None
        self._delivery = AsyncExitStack()
        self.retries: RetryWorker | None = None
        """Sends the automatic answers held through quiet hours or waiting for the provider."""
        self.auto_replier: AutoReplier | None = None
        """None while RESPONSES_SMS_AUTO_REPLIES is off (or before start)."""
        self.talk_confirmer: TalkConfirmer | None = None
        """Sends the confirmations of development-talk bookings; None before start."""
        self.talk_inviter: BookingInviter | None = None
        """Sends the booking invitations when a round's window opens; None before start."""
        self._round_closer = RoundCloser(lambda: self.talks)

    @property
    def service(self) -> ResponsesService:
        if self._service is None:
            raise RuntimeError("the responses service is not started")
        return self._service

    @property
    def talks(self) -> TalksService:
        if self._talks is None:
            raise RuntimeError("the responses service is not started")
        return self._talks

    @property
    def store(self) -> ResponseStore:
        if self._store is None:
            raise RuntimeError("the responses service is not started")
        return self._store

    @property
    def relay(self) -> OutboxRelay:
        if self._relay is None:
            raise RuntimeError("the responses service is not started")
        return self._relay

    async def start(self) -> None:
        store = await ResponseStore.connect(self.settings.database_url)
        self._store = store
        lease = RelayLease(store.engine, holder=f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        await lease.create_schema()
        relay = OutboxRelay(
            store,
            self._publish,
            poll_interval_seconds=self.settings.relay_poll_interval.total_seconds(),
            retry_max_seconds=self.settings.relay_retry_max.total_seconds(),
            on_published=lambda event: self.metrics.events_published.labels(SERVICE).inc(),
            lease=lease,
        )
        self._relay = relay
        service_clock = self._clock or (lambda: datetime.now(UTC))
        service_options = {"clock": self._clock} if self._clock is not None else {}
        self._service = ResponsesService(store=store, keys=self.keys, on_queued=relay.wake, **service_options)
        await create_talk_tables(store.engine)
        self._talks = TalksService(
            store=TalkStore(store.engine),
            keys=self.keys,
            on_queued=relay.wake,
            on_changed=self._confirm_talk,
            **service_options,
        )

        async def outbox_waiting() -> None:
            self.metrics.outbox_waiting.labels(SERVICE).set(await store.waiting())

        self.metrics.on_scrape(outbox_waiting)
        self.readiness.add_check("database", database_check(store.engine))
        try:
            await self._open_delivery(service_clock, store)
            await self.broker.start()
            if self.retries is not None:
                # After the broker: an answer held through quiet hours reports its status through it.
                await self.retries.start()
            if self.talk_inviter is not None:
                # After the broker too: each invitation reports its status through it.
                self.talk_inviter.start()
        except BaseException:
            await self.stop()
            raise
        relay.start()
        self._round_closer.start()
        rules = [*ledger_rules(), *retention_rules()]
        retention = Retention(store.engine, rules, self.settings.retention_windows, clock=service_clock)
        self._retention = RetentionSchedule(
            retention, service=SERVICE, interval=self.settings.retention_interval, registry=self.metrics.registry
        )
        self._retention.start()
        logger.info(
            "responses started: %d answer-link keys, signing with %r; topic prefix %r",
            len(self.settings.answer_link_keys),
            self.keys.signing_key_id,
            self.settings.topic_prefix,
        )

    async def stop(self) -> None:
        self.readiness.remove_check("database")
        if self._retention is not None:
            await self._retention.stop()
        await self._round_closer.stop()
        if self.talk_inviter is not None:
            await self.talk_inviter.stop()
        if self._relay is not None:
            await self._relay.stop()
        if self.retries is not None:
            # Before the broker: answers being sent finish and report their status first.
            await self.retries.stop()
        try:
            await self.broker.stop()
        finally:
            await self._delivery.aclose()
            if self._store is not None:
                await self._store.aclose()
            self._store = self._service = self._talks = self._relay = self._retention = None
            self.retries = self.auto_replier = self.talk_confirmer = self.talk_inviter = None

    async def _confirm_talk(self, change: TalkChange) -> None:
        if self.talk_confirmer is not None:
            await self.talk_confirmer.confirm(change)

    async def _open_delivery(self, clock: Clock, store: ResponseStore) -> None:
        # The delivery core (ledger, channels, retry queue) in the service's own database: talk confirmations
        # always use it, automatic SMS answers when they are on.
        settings = self.settings
        for channel in settings.delivers_to_outbox:
            logger.warning(
                "responses: no %s provider is configured, so automatic SMS answers and talk confirmations by %s go "
                "to the development file outbox in %s; no parent receives them",
                channel,
                channel,
                settings.outbox_dir,
            )
        ledger, dispatcher = await open_dispatcher(
            settings,
            status_sink=self._status,
            resources=self._delivery,
            concurrency=AUTO_REPLY_CONCURRENCY,
            clock=clock,
        )
        self.retries = retry_worker_for(settings, dispatcher, clock=clock)
        self.talk_confirmer = TalkConfirmer(
            engine=store.engine,
            dispatcher=dispatcher,
            quiet_hours=settings.quiet_hours,
            organizer_email=settings.organizer_email,
            clock=clock,
        )
        self.talk_inviter = BookingInviter(
            engine=store.engine,
            dispatcher=dispatcher,
            keys=self.keys,
            public_base_url=settings.public_url,
            quiet_hours=settings.quiet_hours,
            clock=clock,
        )
        if settings.sms_auto_replies is AutoReplyMode.OFF:
            return
        cap = DailyAutoReplyCap(ledger.engine)
        await cap.create_schema()
        self.auto_replier = AutoReplier(
            cap=cap,
            dispatcher=dispatcher,
            mode=settings.sms_auto_replies,
            quiet_hours=settings.quiet_hours,
            public_base_url=settings.public_url,
            clock=clock,
        )

    async def _publish(self, event: OutboxEvent) -> None:
        async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
            publisher = self._talk_publishers.get(event.event_type) or (
                self._unrecognised if event.event_type == SMS_REPLY_UNRECOGNISED else self._rsvp
            )
            await publisher.publish(event.value, key=event.key, headers={"content-type": CLOUDEVENTS_JSON})
