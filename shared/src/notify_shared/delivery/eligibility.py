"""The checks made before every send: may this guardian get routine notifications, and can this channel reach them.

Parental responsibility and school blocks come from the admin system and are checked on every send (DOMAIN.md:
a parent without parental responsibility gets information only on request).
"""

from __future__ import annotations

from dataclasses import dataclass

from notify_shared.contract import Channel, Recipient
from notify_shared.delivery.reachability import unreachable_by
from notify_shared.ledger import DeliveryStatus


@dataclass(frozen=True)
class Verdict:
    """A notification that must not be sent, and why."""

    status: DeliveryStatus
    reason: str
    channel_unusable: bool = False
    """The guardian may be notified, only not on this channel: the other channel may carry it (fallback)."""


def screen(guardian: Recipient, channel: Channel) -> Verdict | None:
    """None when the notification may go out; otherwise the status it ends in without being sent."""
    if guardian.blocked:
        return Verdict(DeliveryStatus.SUPPRESSED, "blocked_by_school")
    if not guardian.has_parental_responsibility:
        return Verdict(DeliveryStatus.SUPPRESSED, "no_parental_responsibility")
    problem = unreachable_by(guardian, channel)
    if problem is not None:
        return Verdict(DeliveryStatus.FAILED, problem, channel_unusable=True)
    return None
