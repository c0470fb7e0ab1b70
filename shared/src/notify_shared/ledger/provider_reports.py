"""What a provider's delivery report can do to a notification (`DeliveryLedger.apply_provider_report`).

Kept free of SQLAlchemy like `status.py`; the HTTP side (`notify_shared.delivery_reports`) only needs these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from notify_shared.ledger.records import DeliveryRecord
from notify_shared.ledger.status import DeliveryStatus

REPORTED_STATUSES: frozenset[DeliveryStatus] = frozenset(
    {DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.BOUNCED}
)
"""The statuses a delivery report may move a `sent` notification to."""


class ReportOutcome(StrEnum):
    """What applying one delivery report did."""

    APPLIED = "applied"
    """The notification was `sent` and now has the reported status (one new history row)."""
    REPEATED = "repeated"
    """It already had the reported status: the provider sent the same report again. Nothing changed."""
    IGNORED = "ignored"
    """It has another final status (a late or out-of-order report, e.g. `failed` after `delivered`)."""
    NOT_SENT_YET = "not_sent_yet"
    """It is still `sending` or `queued`: the report overtook our record of the send. Nothing changed."""
    UNKNOWN = "unknown"
    """No notification of this provider carries that reference (it may belong to another service)."""


@dataclass(frozen=True)
class ProviderReportResult:
    """The outcome, and the notification as it is after the report (None when `unknown`)."""

    outcome: ReportOutcome
    delivery: DeliveryRecord | None
