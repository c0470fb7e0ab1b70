"""The responses logic, free of Kafka and HTTP: learn meetings from their events, check a link, record an answer.

The web routes (`notify_responses.web`) and the Kafka handler (`notify_responses.handlers`) only translate to
and from these calls.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from notify_responses.sms_replies import read_reply
from notify_responses.store import (
    GuardianInvitation,
    InvitationState,
    MeetingRow,
    OutboxEvent,
    ResponseStore,
    StoredAnswer,
)
from notify_shared.answer_links import AnswerLinkKeys, Rejection, TokenRejectedError, invitation_reference
from notify_shared.contract import (
    AnswerChannel,
    CloudEvent,
    GuardianAnswer,
    MeetingCancelled,
    MeetingCreated,
    MeetingRsvp,
    MeetingUpdated,
    Rsvp,
    SmsReplyUnrecognised,
    UnrecognisedReason,
    UnrecognisedReply,
    partition_key,
)
from notify_shared.contract.answers import MAX_COMMENT_LENGTH
from notify_shared.ids import new_event_id
from notify_shared.rendering.languages import available_languages, canonical_tag, choose_language
from notify_shared.topics import MEETING_RSVP, SMS_REPLY_UNRECOGNISED

logger = logging.getLogger(__name__)

MeetingEvent = MeetingCreated | MeetingUpdated | MeetingCancelled
Clock = Callable[[], datetime]
SOURCE = "/notify/responses"
MAX_REPLY_LENGTH = 1600
"""Of an SMS reply, this much is kept (ten concatenated segments; a longer one is no answer anyway)."""

# Every control character but the line feed and tab a parent may type in a comment; CR LF becomes LF.
_COMMENT_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class LinkState(StrEnum):
    """What a link leads to. Every state but OPEN is a page that says so, with its own HTTP status."""

    OPEN = "open"
    """The form (200)."""
    INVALID = "invalid"
    """Not a genuine link, a retired key, or an invitation this service does not know: 404, one page for all, so
    the page says nothing about whether a meeting or guardian exists."""
    STARTED = "started"
    """The meeting has started: answers are closed (410)."""
    CANCELLED = "cancelled"
    """The meeting was called off (410)."""


@dataclass(frozen=True)
class LinkCheck:
    state: LinkState
    language: str
    """The page's language: the guardian's where the link tells it, else bokmål."""
    invitation: InvitationState | None = None
    rejection: Rejection | None = None
    """Why the token itself was refused (for the rejected-token metric), when it was."""


class FormProblem(StrEnum):
    """What a parent must fix in the form; each has a message next to its field and in the summary."""

    NO_ANSWER = "no_answer"
    COMMENT_TOO_LONG = "comment_too_long"
    UNKNOWN_LANGUAGE = "unknown_language"


@dataclass(frozen=True)
class AnswerForm:
    """The form as posted, kept to re-render it with the parent's own input when something must be fixed."""

    answer: Rsvp | None
    needs_interpreter: bool
    interpreter_language: str | None
    comment: str | None
    problems: tuple[FormProblem, ...] = field(default=())

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> AnswerForm:
        answer_value = fields.get("answer", "")
        answer = Rsvp(answer_value) if answer_value in {item.value for item in Rsvp} else None
        needs_interpreter = fields.get("interpreter") == "yes"
        language = fields.get("interpreter_language") or None
        comment = clean_comment(fields.get("comment", ""))
        problems: list[FormProblem] = []
        if answer is None:
            problems.append(FormProblem.NO_ANSWER)
        if needs_interpreter and (language is None or canonical_tag(language) not in available_languages()):
            problems.append(FormProblem.UNKNOWN_LANGUAGE)
            language = None
        if comment is not None and len(comment) > MAX_COMMENT_LENGTH:
            problems.append(FormProblem.COMMENT_TOO_LONG)
        return cls(answer, needs_interpreter, language, comment, tuple(problems))


def clean_comment(text: str) -> str | None:
    """A comment as stored: line breaks as LF, no other control or direction-override characters, trimmed."""
    cleaned = _COMMENT_CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()
    return cleaned or None


class RecordResult(StrEnum):
    RECORDED = "recorded"
    """A new or changed answer: stored, and its meeting.rsvp queued."""
    UNCHANGED = "unchanged"
    """The same answer as before: nothing stored, nothing published."""
    NEEDS_FIXING = "needs_fixing"
    """The form has problems; show it again."""
    CLOSED = "closed"
    """The link no longer takes answers (see `LinkCheck.state`)."""
    UNRECOGNISED = "unrecognised"
    """An SMS reply that is no answer, or from a number with no open invitation: queued for the school."""


@dataclass(frozen=True)
class Recorded:
    result: RecordResult
    link: LinkCheck
    form: AnswerForm | None = None


class ResponsesService:
    """Meetings in, answers out; safe to call again with the same event or answer."""

    def __init__(
        self,
        *,
        store: ResponseStore,
        keys: AnswerLinkKeys,
        clock: Clock = lambda: datetime.now(UTC),
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._keys = keys
        self._clock = clock
        self._on_queued = on_queued  # wakes the relay, so an answer leaves at once rather than at the next poll

    @property
    def keys(self) -> AnswerLinkKeys:
        return self._keys

    def now(self) -> datetime:
        """The clock's time in UTC: what is stored and compared in the database is UTC."""
        return self._clock().astimezone(UTC)

    async def apply(self, event: MeetingEvent) -> None:
        """Remember the meeting and whom it invites, as this event describes them."""
        data = event.data
        school, meeting = data.school, data.meeting
        invited = [
            GuardianInvitation(
                reference=invitation_reference(school.id, meeting.meeting_id, guardian.guardian_id).hex(),
                school_id=school.id,
                meeting_id=meeting.meeting_id,
                guardian_id=guardian.guardian_id,
                language=guardian.language,
                phone=guardian.phone,
            )
            # Only guardians who are sent the invitation have a link to answer with.
            for guardian in data.recipients
            if guardian.may_receive_routine_notifications
        ]
        row = MeetingRow(
            school_id=school.id,
            meeting_id=meeting.meeting_id,
            school_name=school.name,
            title=meeting.title,
            starts_at=meeting.starts_at.astimezone(UTC),
            ends_at=meeting.ends_at.astimezone(UTC),
            location=meeting.location,
            timezone=school.timezone,
            written_standard=school.written_standard,
            cancelled=isinstance(event, MeetingCancelled),
            sms_sender_id=school.sms_sender_id,
        )
        await self._store.save_meeting(row, invited, event_time=(event.time or self._clock()).astimezone(UTC))
        logger.info(
            "event %s (%s): meeting %s of school %s, %d guardians may answer",
            event.id,
            event.type,
            meeting.meeting_id,
            school.id,
            len(invited),
        )

    async def check(self, token: str) -> LinkCheck:
        """What `token` leads to now. Reads only: opening a link never changes anything."""
        now = self.now()
        try:
            link = self._keys.verify(token, now=now)
        except TokenRejectedError as rejected:
            if rejected.reason is Rejection.EXPIRED and rejected.invitation is not None:
                state = await self._store.invitation(rejected.invitation.hex())
                return LinkCheck(LinkState.STARTED, _language_of(state), state, rejected.reason)
            return LinkCheck(LinkState.INVALID, _language_of(None), rejection=rejected.reason)
        state = await self._store.invitation(link.invitation.hex())
        return LinkCheck(_state_of(state, now), _language_of(state), state)

    async def record(self, token: str, fields: Mapping[str, str], *, via: AnswerChannel) -> Recorded:
        """Record the answer posted with `token`; the caller has checked the form's anti-forgery value."""
        now = self.now()
        form = AnswerForm.from_fields(fields)
        try:
            reference = self._keys.verify(token, now=now).invitation.hex()
        except TokenRejectedError:
            return Recorded(RecordResult.CLOSED, await self.check(token))
        if form.problems or form.answer is None:
            link = await self.check(token)
            if link.state is not LinkState.OPEN or link.invitation is None:
                return Recorded(RecordResult.CLOSED, link)
            return Recorded(RecordResult.NEEDS_FIXING, link, form)
        stored = StoredAnswer(
            answer=form.answer,
            interpreter_language=form.interpreter_language if form.needs_interpreter else None,
            comment=form.comment,
            via=via,
            answered_at=now,
        )
        # One transaction reads the invitation and stores the answer: a valid answer costs no separate read.
        result, state = await self._store_answer(reference, stored)
        link = LinkCheck(_state_of(state, now), _language_of(state), state)
        if state is None or result is RecordResult.CLOSED:
            return Recorded(RecordResult.CLOSED, link, form)
        return Recorded(result, link, form)

    async def record_sms_reply(self, *, phone: str, text: str) -> SmsReplyOutcome:
        """Record a reply to the invitation SMS from `phone` (E.164) as the answer to the guardian's latest open
        invitation, or queue it as unrecognised for the school."""
        now = self.now()
        state = await self._store.latest_open_invitation(phone, now=now)
        if state is None:
            return await self._unrecognised(UnrecognisedReason.UNKNOWN_NUMBER, None, text, now)
        if _state_of(state, now) is not LinkState.OPEN:
            return await self._unrecognised(UnrecognisedReason.NO_OPEN_INVITATION, state, text, now)
        answer = read_reply(text, state.invitation.language)
        if answer is None:
            return await self._unrecognised(UnrecognisedReason.NOT_UNDERSTOOD, state, text, now)
        earlier = state.answer
        stored = StoredAnswer(
            answer=answer,
            # A reply says only yes, no or maybe: an interpreter asked for and a comment written on the page stay.
            interpreter_language=earlier.interpreter_language if earlier is not None else None,
            comment=earlier.comment if earlier is not None else None,
            via=AnswerChannel.SMS,
            answered_at=now,
        )
        result, _ = await self._store_answer(state.invitation.reference, stored)
        return SmsReplyOutcome(result, answer=answer, invitation=state)

    async def record_unknown_sender(self, text: str) -> SmsReplyOutcome:
        """A reply whose sender is not a phone number (an alphanumeric sender, a malformed one): for the school."""
        return await self._unrecognised(UnrecognisedReason.UNKNOWN_NUMBER, None, text, self.now())

    async def _store_answer(self, reference: str, stored: StoredAnswer) -> tuple[RecordResult, InvitationState | None]:
        now = stored.answered_at
        queued: list[OutboxEvent] = []

        def event(invitation: GuardianInvitation) -> OutboxEvent:
            queued.append(_rsvp_event(invitation, stored))
            return queued[-1]

        changed, state = await self._store.record_answer(
            reference, stored, event=event, accept=lambda current: _state_of(current, now) is LinkState.OPEN
        )
        if state is None or _state_of(state, now) is not LinkState.OPEN:
            return RecordResult.CLOSED, state
        if not changed:
            return RecordResult.UNCHANGED, state
        invitation = state.invitation
        self._on_queued()
        logger.info(
            "answer %s via %s for meeting %s of school %s by guardian %s: event %s queued",
            stored.answer.value,
            stored.via.value,
            invitation.meeting_id,
            invitation.school_id,
            invitation.guardian_id,
            queued[-1].event_id,
        )
        return RecordResult.RECORDED, state

    async def _unrecognised(
        self, reason: UnrecognisedReason, state: InvitationState | None, text: str, now: datetime
    ) -> SmsReplyOutcome:
        invitation = state.invitation if state is not None else None
        event = SmsReplyUnrecognised(
            id=new_event_id(),
            source=SOURCE,
            time=now,
            data=UnrecognisedReply(
                reason=reason,
                school_id=invitation.school_id if invitation else None,
                meeting_id=invitation.meeting_id if invitation else None,
                guardian_id=invitation.guardian_id if invitation else None,
                text=text[:MAX_REPLY_LENGTH],
                received_at=now,
            ),
        )
        await self._store.queue_event(_outbox_event(event, SMS_REPLY_UNRECOGNISED), at=now)
        self._on_queued()
        logger.info(
            "SMS reply not recorded as an answer (%s, school %s, guardian %s): event %s queued",
            reason.value,
            invitation.school_id if invitation else None,
            invitation.guardian_id if invitation else None,
            event.id,
        )
        return SmsReplyOutcome(RecordResult.UNRECOGNISED, reason=reason, invitation=state)


@dataclass(frozen=True)
class SmsReplyOutcome:
    result: RecordResult
    answer: Rsvp | None = None
    reason: UnrecognisedReason | None = None
    invitation: InvitationState | None = None
    """The invitation the reply was matched with, if the number had one (for the automatic answer)."""


def _state_of(state: InvitationState | None, now: datetime) -> LinkState:
    if state is None or not state.invited:
        return LinkState.INVALID
    if state.meeting.cancelled:
        return LinkState.CANCELLED
    if now >= state.meeting.starts_at:
        return LinkState.STARTED
    return LinkState.OPEN


def _language_of(state: InvitationState | None) -> str:
    if state is None:
        return choose_language(None, None)
    return choose_language(state.invitation.language, state.meeting.written_standard)


def _rsvp_event(invitation: GuardianInvitation, answer: StoredAnswer) -> OutboxEvent:
    event = MeetingRsvp(
        id=new_event_id(),
        source=SOURCE,
        time=answer.answered_at,
        subject=invitation.meeting_id,
        data=GuardianAnswer(
            school_id=invitation.school_id,
            meeting_id=invitation.meeting_id,
            guardian_id=invitation.guardian_id,
            answer=answer.answer,
            interpreter_language=answer.interpreter_language,
            comment=answer.comment,
            answered_at=answer.answered_at,
            via=answer.via,
        ),
    )
    return _outbox_event(event, MEETING_RSVP)


def _outbox_event(event: CloudEvent, event_type: str) -> OutboxEvent:
    return OutboxEvent(
        position=0,  # given by the database
        event_id=event.id,
        event_type=event_type,
        key=partition_key(event),
        value=event.model_dump_json(exclude_none=True).encode(),
    )
