"""The responses service's Prometheus metrics, in the registry of a `notify_shared.observability.ServiceMetrics`.

Labels are answers, channels, routes and reasons: never a token, a school's or guardian's id, or anything typed.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from notify_shared.observability import ServiceMetrics

SERVICE = "responses"

PAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds; the targets are 100 ms for showing the page and 250 ms for recording an answer (docs/benchmarks.md)."""


class ResponsesMetrics(ServiceMetrics):
    """The shared service metrics plus answers, page latency, rejected links and the outbox."""

    def __init__(self) -> None:
        super().__init__(SERVICE)
        self.answers = Counter(
            "notify_responses_answers",
            "Answers received, by answer (accepted, declined, tentative), channel (web, sms) and result "
            "(recorded, unchanged).",
            ["service", "answer", "via", "result"],
            registry=self.registry,
        )
        self.page_latency = Histogram(
            "notify_responses_page_seconds",
            "Seconds to answer a request for the answer page, by method (GET shows, POST records) and status.",
            ["service", "method", "status"],
            buckets=PAGE_BUCKETS,
            registry=self.registry,
        )
        self.rejected_links = Counter(
            "notify_responses_rejected_links",
            "Answer links refused, by reason: malformed, unknown_key, bad_signature, expired, unknown_invitation, "
            "closed (cancelled or started by the database), forgery (a POST without the form's value), rate_limited, "
            "unsigned_sms (an inbound SMS without a valid signature).",
            ["service", "reason"],
            registry=self.registry,
        )
        self.talk_bookings = Counter(
            "notify_responses_talk_bookings",
            "Posts to development-talk booking links, by result: booked, moved, cancelled, unchanged, taken (lost a "
            "race or withdrawn), overlap (a guardian's other child at that time), no_choice, closed.",
            ["service", "result"],
            registry=self.registry,
        )
        self.events_published = Counter(
            "notify_responses_events_published",
            "meeting.rsvp events the outbox relay published.",
            ["service"],
            registry=self.registry,
        )
        self.outbox_waiting = self.gauge(
            "notify_responses_outbox_waiting", "meeting.rsvp events written with their answer, not yet on Kafka."
        )

    def answered(self, *, answer: str, via: str, result: str) -> None:
        self.answers.labels(self.service, answer, via, result).inc()

    def page_served(self, *, method: str, status: int, seconds: float) -> None:
        self.page_latency.labels(self.service, method, str(status)).observe(seconds)

    def booking_attempted(self, result: str) -> None:
        self.talk_bookings.labels(self.service, result).inc()

    def link_rejected(self, reason: str) -> None:
        self.rejected_links.labels(self.service, reason).inc()
