"""From a meeting event and the decision about it to the notifications to send. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from notify_invitations.meeting_states import DecisionKind, MeetingDecision, MeetingEvent
from notify_shared.calendar_invites import CalendarMethod, MeetingCalendar, calendar_attachment
from notify_shared.channels import Attachment
from notify_shared.contract import Channel, MeetingCancellation, Recipient
from notify_shared.delivery import PlannedNotification, SourceEventRef

INVITATION = "meeting_invitation"
UPDATE = "meeting_update"
CANCELLATION = "meeting_cancellation"


@dataclass(frozen=True)
class PlanningContext:
    """What planning needs besides the event: the calendar ORGANIZER and the DTSTAMP."""

    organizer_email: str
    stamp: datetime


def _template_for(decision: MeetingDecision, guardian: Recipient) -> str | None:
    match decision.kind:
        case DecisionKind.INVITE:
            return INVITATION
        case DecisionKind.CANCEL:
            return CANCELLATION
        case DecisionKind.UPDATE if guardian.guardian_id in decision.newly_invited:
            return INVITATION
        case DecisionKind.UPDATE if decision.changes:
            return UPDATE
        case _:
            return None


def plan_notifications(
    event: MeetingEvent, decision: MeetingDecision, context: PlanningContext
) -> list[PlannedNotification]:
    """One notification per guardian and wanted channel; ineligible guardians are planned too, to be suppressed."""
    data = event.data
    source = SourceEventRef(id=event.id, type=event.type, time=event.time)
    note = data.cancellation_note if isinstance(data, MeetingCancellation) else None
    calendars = _Calendars(event, decision, context)
    plans: list[PlannedNotification] = []
    for guardian in data.recipients:
        template = _template_for(decision, guardian)
        if template is None:
            continue
        template_context: dict[str, object] = {
            "school": data.school,
            "meeting": data.meeting,
            "guardian": guardian,
            "changes": decision.changes,
            "previous": decision.previous,
            "cancellation_note": note,
        }
        for channel in guardian.channels:
            plans.append(
                PlannedNotification(
                    source=source,
                    school=data.school,
                    guardian=guardian,
                    channel=channel,
                    template=template,
                    context=template_context,
                    attachments=calendars.for_guardian(guardian, template),
                    # Nothing about a meeting goes out once it has started, retries included.
                    not_after=data.meeting.starts_at,
                )
            )
    return plans


class _Calendars:
    """The event's calendar files: built once per method, then addressed to each guardian."""

    def __init__(self, event: MeetingEvent, decision: MeetingDecision, context: PlanningContext) -> None:
        self._event = event
        self._decision = decision
        self._context = context
        self._built: dict[CalendarMethod, MeetingCalendar] = {}

    def for_guardian(self, guardian: Recipient, template: str) -> tuple[Attachment, ...]:
        # Every plan of a guardian with an address carries the calendar file, SMS ones too: if the SMS fails and
        # goes by email instead, that email is the invitation with its .ics, not a copy without it.
        if not guardian.may_receive_routine_notifications or guardian.contact_problem(Channel.EMAIL) is not None:
            return ()
        method = CalendarMethod.CANCEL if template == CANCELLATION else CalendarMethod.REQUEST
        return (calendar_attachment(self._calendar(method).for_guardian(guardian), method),)

    def _calendar(self, method: CalendarMethod) -> MeetingCalendar:
        calendar = self._built.get(method)
        if calendar is None:
            data = self._event.data
            calendar = self._built[method] = MeetingCalendar(
                school=data.school,
                meeting=data.meeting,
                organizer_email=self._context.organizer_email,
                method=method,
                sequence=self._decision.sequence,
                stamp=self._context.stamp,
            )
        return calendar
