"""What the ledger answers with: claims, stored notifications, their histories and summaries.

Free of SQLAlchemy, like `keys.py` and `status.py`, so code that only reads these shapes stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from notify_shared.ledger.keys import DeliveryKey
from notify_shared.ledger.status import DeliveryStatus


class UnknownNotificationError(LookupError):
    """`record` was given a notification id that `begin` never created."""


@dataclass(frozen=True)
class ClaimRequest:
    """One key to claim with `begin_many`, with the facts stored when the notification is new."""

    key: DeliveryKey
    source_event_type: str
    school_id: str
    language: str | None = None

    def __post_init__(self) -> None:
        # The school is part of the key; a stored school other than the key's would file the row under another.
        if self.school_id != self.key.school_id:
            raise ValueError("ClaimRequest.school_id must be the school of its key")


@dataclass(frozen=True)
class Claim:
    """The answer of `begin`: whether this caller sends the notification now."""

    notification_id: str
    should_send: bool
    """True for exactly one caller: the one that created the row or took over an abandoned one."""
    previous_status: DeliveryStatus | None
    """The status `begin` found; None when the notification is new."""
    attempts: int
    """Claims so far, this one included when `should_send` is True."""

    @property
    def in_flight(self) -> bool:
        """Someone else holds a live claim: not sent yet, but not ours to send before their lease runs out.

        A caller that must not lose the notification (the holder may have crashed) should retry after the
        lease instead of treating it as done.
        """
        return not self.should_send and self.previous_status is DeliveryStatus.SENDING

    @property
    def awaiting_retry(self) -> bool:
        """It waits in the durable retry queue, whose worker will send it: nothing for this caller to do."""
        return not self.should_send and self.previous_status is DeliveryStatus.QUEUED


@dataclass(frozen=True)
class DeliveryRecord:
    """One notification as the ledger stores it. Times are timezone-aware UTC."""

    notification_id: str
    source_event_source: str
    source_event_id: str
    source_event_type: str
    school_id: str
    guardian_id: str
    channel: str
    template: str
    language: str | None
    status: DeliveryStatus
    reason: str | None
    detail: str | None
    provider: str | None
    provider_message_id: str | None
    attempts: int
    segments: int | None
    created_at: datetime
    updated_at: datetime

    @property
    def key(self) -> DeliveryKey:
        return DeliveryKey(
            self.school_id,
            self.source_event_source,
            self.source_event_id,
            self.guardian_id,
            self.channel,
            self.template,
        )


@dataclass(frozen=True)
class StatusChange:
    """One entry of a notification's status history."""

    status: DeliveryStatus
    reason: str | None
    detail: str | None
    at: datetime


@dataclass(frozen=True)
class DeliveryHistory:
    """A notification with every status it has had, oldest first."""

    delivery: DeliveryRecord
    changes: tuple[StatusChange, ...]


@dataclass(frozen=True)
class SummaryRow:
    """How many notifications of one school and channel are in one status."""

    school_id: str
    channel: str
    status: DeliveryStatus
    count: int
