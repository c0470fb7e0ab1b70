"""The ingest's Prometheus metrics, in the registry of a `notify_shared.observability.ServiceMetrics`.

Labels are the school id (the caller, from its API key) and the outcome: never an event id or anything from the
event's content.
"""

from __future__ import annotations

from prometheus_client import Counter

from notify_shared.observability import ServiceMetrics

SERVICE = "ingest"

UNKNOWN_SCHOOL = "unknown"
"""The `school` label of a request without a valid key."""


class IngestMetrics(ServiceMetrics):
    """The shared service metrics (FastStream's publisher metrics among them) plus the ingest's request counter."""

    def __init__(self) -> None:
        super().__init__(SERVICE)
        self.requests = Counter(
            "notify_ingest_requests",
            "POST /v1/events requests by school and outcome (accepted, duplicate, invalid, unauthorized, "
            "forbidden, not_allowed, too_large, unsupported_media_type, conflict, rate_limited, unavailable).",
            ["service", "school", "outcome"],
            registry=self.registry,
        )

    def request_answered(self, *, school_id: str | None, outcome: str) -> None:
        self.requests.labels(self.service, school_id or UNKNOWN_SCHOOL, outcome).inc()
