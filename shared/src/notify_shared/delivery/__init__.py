"""The delivery core every service shares: plan → claim → screen → render → send → record → report."""

from notify_shared.delivery.deadlines import Deadlines, ExpiryReason
from notify_shared.delivery.dispatcher import Dispatcher, Render
from notify_shared.delivery.eligibility import Verdict, screen
from notify_shared.delivery.handled import CollectingHandledSink, EventReporter, HandledSink, describe
from notify_shared.delivery.job import DeliveryJob
from notify_shared.delivery.outcome import DeliveryOutcome, NotificationInFlightError
from notify_shared.delivery.plan import PlannedNotification, SourceEventRef
from notify_shared.delivery.reachability import NOT_MOBILE, unreachable_by
from notify_shared.delivery.retry import Backoff
from notify_shared.delivery.retry_worker import RetryWorker
from notify_shared.delivery.status_sink import CollectingStatusSink, StatusSink

__all__ = [
    "NOT_MOBILE",
    "Backoff",
    "CollectingHandledSink",
    "CollectingStatusSink",
    "Deadlines",
    "DeliveryJob",
    "DeliveryOutcome",
    "Dispatcher",
    "EventReporter",
    "ExpiryReason",
    "HandledSink",
    "NotificationInFlightError",
    "PlannedNotification",
    "Render",
    "RetryWorker",
    "SourceEventRef",
    "StatusSink",
    "Verdict",
    "describe",
    "screen",
    "unreachable_by",
]
