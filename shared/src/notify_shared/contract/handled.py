"""`event.handled`: one event per input event a service has handled, saying what came of it.

Status events tell the story of each notification; an event that causes none (an update that changes only the
agenda, an update older than one already applied, a repeated event id) would otherwise leave no trace on the
topics. This event closes that gap: an integrator sees that the event was taken in, by which service, and whether
it notified anyone, how many notifications in which status, or why not. Ids and counts only.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from notify_shared.contract.envelope import CloudEvent
from notify_shared.topics import EVENT_HANDLED

__all__ = ["EVENT_HANDLED", "EventHandled", "EventHandledReport", "HandlingOutcome"]


class HandlingOutcome(StrEnum):
    """What came of one input event."""

    NOTIFIED = "notified"
    """Notifications were sent, queued or ended otherwise by this handling; `notifications` counts them."""
    SCHEDULED = "scheduled"
    """Kept to be sent later: reminders planned, digest items stored, an absence notice waiting to merge."""
    NOTHING_TO_SEND = "nothing_to_send"
    """Understood and applied, but nothing for guardians to hear (see `reason`)."""
    STALE = "stale"
    """Older than what the service already applied for the same meeting: ignored."""
    ALREADY_HANDLED = "already_handled"
    """This event (same school, source and id) was handled before (a redelivery or a repeat): nothing sent again."""


class EventHandledReport(BaseModel):
    """`data` of event.handled: which event, which service, and what came of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source_event_source: str = Field(
        description="The CloudEvents source of the input event; with `source_event_id`, what identifies it.",
        examples=["/visma-flyt/0301"],
    )
    source_event_id: str = Field(description="The CloudEvents id of the input event (unique only within its source).")
    source_event_type: str = Field(examples=["meeting.updated"])
    school_id: str
    service: str = Field(description="The service that handled it.", examples=["invitations"])
    outcome: HandlingOutcome
    reason: str | None = Field(
        default=None,
        description="Why nothing was sent, machine-readable: no_time_or_place_change, older_than_applied, "
        "no_recipients, delivery_mode_off, reported_by_guardian, …",
        examples=["no_time_or_place_change"],
    )
    notifications: dict[str, int] = Field(
        default_factory=dict,
        description="Notifications this handling created, by status (sent, queued, failed, suppressed, expired); "
        "those recorded by an earlier handling of the same event are not counted again.",
        examples=[{"sent": 3, "queued": 1}],
    )
    scheduled: int = Field(default=0, ge=0, description="Reminders, digest items or notices kept for later.")
    handled_at: AwareDatetime


class EventHandled(CloudEvent):
    """An input event was handled; what came of it."""

    type: Literal["event.handled"] = "event.handled"
    data: EventHandledReport
