"""What the dispatcher answers with: one outcome per planned notification, or the claim it must wait for."""

from __future__ import annotations

from dataclasses import dataclass

from notify_shared.ledger.status import DeliveryStatus


class NotificationInFlightError(RuntimeError):
    """Another sender holds a live claim on a notification of this event (or we did, before a crash).

    The event must be handled again later rather than acknowledged: once the claim's lease runs out, the
    notification is claimed again and sent, so it is never lost.
    """

    def __init__(self, notification_id: str) -> None:
        super().__init__(f"notification {notification_id} is claimed by another sender; retry after its lease")
        self.notification_id = notification_id


@dataclass(frozen=True)
class DeliveryOutcome:
    """What became of one planned notification in this run (`queued`: waiting in the retry queue)."""

    notification_id: str
    status: DeliveryStatus
    reason: str | None = None
    already_recorded: bool = False
