"""From a meeting event and the decision about it to the notifications to send. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from notify_invitations.meeting_states import DecisionKind, MeetingDecision, MeetingEvent
from notify_shared.calendar_invites import CalendarMethod, MeetingCalendar, calendar_attachment
from notify_shared.channels import Attachment
from notify_shared.contract import Channel, MeetingCancellation, Recipient
from notify_shared.delivery import PlannedNotification, SourceEventRef
from notify_shared.quiet_hours import QuietHours

INVITATION = "meeting_invitation"
UPDATE = "meeting_update"
CANCELLATION = "meeting_cancellation"


AnswerUrl = Callable[[MeetingEvent, Recipient], str]
"""The guardian's personal answer link for the event's meeting (`notify_shared.answer_links`)."""


@dataclass(frozen=True)
class PlanningContext:
    """What planning needs besides the event: the calendar ORGANIZER and the DTSTAMP; to hold SMS back through the
    night, the time now and the quiet hours (None: SMS go at once); and the answer links (None when
    PUBLIC_BASE_URL and the link keys are not set: invitations then go out without one)."""

    organizer_email: str
    stamp: datetime
    now: datetime | None = None
    quiet_hours: QuietHours | None = None
    answer_url: AnswerUrl | None = None


def _sms_not_before(event: MeetingEvent, context: PlanningContext) -> datetime | None:
    """The end of quiet hours when it is night at the school now, unless the meeting starts before that.

    Only SMS wait: a phone buzzes at 22:06, while an email waits in the inbox by itself.
    """
    if context.quiet_hours is None or context.now is None:
        return None
    data = event.data
    morning = context.quiet_hours.end_after(context.now, data.school.zone)
    if morning is None or data.meeting.starts_at <= morning:
        return None
    return morning


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
    source = SourceEventRef.of_event(event)
    note = data.cancellation_note if isinstance(data, MeetingCancellation) else None
    calendar: MeetingCalendar | None = None  # built once for the event, when the first guardian needs it
    sms_not_before = _sms_not_before(event, context)
    plans: list[PlannedNotification] = []
    for guardian in data.recipients:
        template = _template_for(decision, guardian)
        if template is None:
            continue
        if calendar is None:
            calendar = _meeting_calendar(event, decision, context)
        attachments = _calendar_for(guardian, calendar)
        template_context: dict[str, object] = {
            "school": data.school,
            "meeting": data.meeting,
            "guardian": guardian,
            "changes": decision.changes,
            "previous": decision.previous,
            "cancellation_note": note,
        }
        if context.answer_url is not None and template in (INVITATION, UPDATE):
            template_context["answer_url"] = context.answer_url(event, guardian)
        for channel in guardian.channels:
            plans.append(
                PlannedNotification(
                    source=source,
                    school=data.school,
                    guardian=guardian,
                    channel=channel,
                    template=template,
                    context=template_context,
                    attachments=attachments,
                    # Nothing about a meeting goes out once it has started, retries included.
                    not_after=data.meeting.starts_at,
                    not_before=sms_not_before if channel is Channel.SMS else None,
                )
            )
    return plans


def _meeting_calendar(event: MeetingEvent, decision: MeetingDecision, context: PlanningContext) -> MeetingCalendar:
    # A cancellation is the only decision whose guardians get the cancellation template, and so a CANCEL calendar.
    method = CalendarMethod.CANCEL if decision.kind is DecisionKind.CANCEL else CalendarMethod.REQUEST
    return MeetingCalendar(
        school=event.data.school,
        meeting=event.data.meeting,
        organizer_email=context.organizer_email,
        method=method,
        sequence=decision.sequence,
        stamp=context.stamp,
    )


def _calendar_for(guardian: Recipient, calendar: MeetingCalendar) -> tuple[Attachment, ...]:
    # Every plan of a guardian with an address carries the calendar file, SMS ones too: if the SMS fails and
    # goes by email instead, that email is the invitation with its .ics, not a copy without it.
    if not guardian.may_receive_routine_notifications or guardian.contact_problem(Channel.EMAIL) is not None:
        return ()
    return (calendar_attachment(calendar.for_guardian(guardian), calendar.method),)
