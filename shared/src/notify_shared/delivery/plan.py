"""What a service asks the delivery core to send: one notification to one guardian on one channel."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from notify_shared.channels import Attachment
from notify_shared.contract import Channel, CloudEvent, Recipient, School


@dataclass(frozen=True)
class SourceEventRef:
    """The event a notification answers; its `source` and `id` (CloudEvents attributes) make every send idempotent.

    An id is unique only per source, so the two always go together. For a notification a service starts itself
    (a reminder, a digest), `source` is the service's own (`notify_shared.ids.service_source`) and `id` one it
    derived. `time` is when the event happened (CloudEvents `time`), for the event-to-provider latency metric.
    """

    source: str
    id: str
    type: str
    time: datetime | None = None

    @classmethod
    def of_event(cls, event: CloudEvent) -> SourceEventRef:
        """The reference to an input event, from its CloudEvents attributes."""
        return cls(source=event.source, id=event.id, type=event.type, time=event.time)


@dataclass(frozen=True)
class PlannedNotification:
    """One notification, fully decided but not yet rendered or sent.

    `context` is what the template sees; `attachments` go with the email only (e.g. the `.ics` file).
    `not_after` is the start of the meeting the notification is about: it is not sent (or retried) after that.
    `not_before` holds it back until then (the end of quiet hours): it is rendered and recorded `queued` at once,
    and the retry worker sends it when that time comes, its deadline counting from then.
    """

    source: SourceEventRef
    school: School
    guardian: Recipient
    channel: Channel
    template: str
    context: Mapping[str, object]
    attachments: tuple[Attachment, ...] = field(default=())
    not_after: datetime | None = None
    not_before: datetime | None = None
