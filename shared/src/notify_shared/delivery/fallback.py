"""The fallback: a notification that could not be delivered on one channel, created on the guardian's other."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from notify_shared.contract import Channel
from notify_shared.delivery.deadlines import Deadlines
from notify_shared.delivery.job import DeliveryJob
from notify_shared.delivery.reachability import unreachable_by
from notify_shared.ledger import DeliveryKey, QueuedNotification
from notify_shared.ledger.keys import notification_id_for

FALLBACK_REASON_PREFIX = "fallback_from:"
"""Reason of the `queued` status of a notification created to replace one that failed on the other channel."""


def fallback_for(
    failed: DeliveryJob, *, now: datetime, deadlines: Deadlines
) -> tuple[QueuedNotification, DeliveryJob] | None:
    """The same notification on the guardian's other channel, if they allowed it and can get it there.

    It is created in the retry queue in the transaction that records the failure, keyed like any other
    notification (same event, guardian and template), so it is sent at most once, never lost, and not at
    all when that channel already carried this notification. Nothing about a meeting that has started.
    """
    other = Channel.EMAIL if failed.channel is Channel.SMS else Channel.SMS
    guardian = failed.guardian
    if other not in guardian.channels or unreachable_by(guardian, other) is not None:
        return None
    if failed.not_after is not None and now >= failed.not_after:
        return None
    key = DeliveryKey(
        failed.school.id, failed.source.source, failed.source.id, guardian.guardian_id, other.value, failed.template
    )
    job = replace(
        failed,
        notification_id=notification_id_for(key),
        channel=other,
        attempt=1,
        # The window counts from the first try on the first channel: an SMS 24 hours late helps nobody.
        deadline=deadlines.deadline(other, first_try=failed.first_try, not_after=failed.not_after),
    )
    queued = QueuedNotification(
        key=key,
        source_event_type=failed.source.type,
        school_id=failed.school.id,
        language=guardian.language,
        job=job.to_json(),
        due_at=now,
        reason=f"{FALLBACK_REASON_PREFIX}{failed.channel.value}",
    )
    return queued, job
