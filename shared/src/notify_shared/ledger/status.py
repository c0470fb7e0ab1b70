"""The status vocabulary of a notification, shared by the ledger and the event contract.

This module must not import SQLAlchemy: `notify_shared.contract` re-uses `DeliveryStatus` in its status
events, and the contract has to stay importable (and cheap to import) without a database driver.
"""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    """Where one notification stands. Values are stored in the ledger and published in status events."""

    QUEUED = "queued"
    """Waiting in the durable retry queue for its next try after a transient failure (see
    `notify_shared.ledger.retry_queue`). The retry worker owns it: a redelivered event does not claim it."""
    SENDING = "sending"
    """Claimed by a sender that is talking to the channel right now (or crashed while doing so)."""
    SENT = "sent"
    """The channel accepted it."""
    DELIVERED = "delivered"
    """The provider reported delivery to the phone or mailbox."""
    BOUNCED = "bounced"
    """The provider reported that the address or number does not take it."""
    FAILED = "failed"
    """Given up: a permanent error, retries exhausted, or no usable address."""
    EXPIRED = "expired"
    """Too late to be useful (e.g. the meeting has passed), so never sent."""
    SUPPRESSED = "suppressed"
    """Deliberately not sent: blocked by the school or no parental responsibility."""
    SKIPPED = "skipped"
    """Not needed (e.g. nothing changed for this guardian)."""

    @property
    def is_final(self) -> bool:
        """True when nothing will be sent for this notification any more: a redelivered event must not resend.

        Only `queued` and `sending` are in progress: a `sending` row left by a crashed sender is claimed again
        when its lease runs out, a `queued` one by the retry worker.
        """
        return self not in IN_PROGRESS_STATUSES


IN_PROGRESS_STATUSES: frozenset[DeliveryStatus] = frozenset({DeliveryStatus.QUEUED, DeliveryStatus.SENDING})
"""Statuses a sender may still act on; every other status is final."""

FINAL_STATUSES: frozenset[DeliveryStatus] = frozenset(DeliveryStatus) - IN_PROGRESS_STATUSES
"""Statuses after which a notification is never sent (again)."""
