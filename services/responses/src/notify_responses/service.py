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
    GuardianAnswer,
    MeetingCancelled,
    MeetingCreated,
    MeetingRsvp,
    MeetingUpdated,
    Rsvp,
    partition_key,
)
from notify_shared.contract.answers import MAX_COMMENT_LENGTH
from notify_shared.ids import new_event_id
from notify_shared.rendering.languages import available_languages, canonical_tag, choose_language
from notify_shared.topics import MEETING_RSVP

logger = logging.getLogger(__name__)

MeetingEvent = MeetingCreated | MeetingUpdated | MeetingCancelled
Clock = Callable[[], datetime]
SOURCE = "/notify/responses"

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
        )
        await self._store.save_meeting(row, invited)
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
        now = self._clock()
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
        link = await self.check(token)
        if link.state is not LinkState.OPEN or link.invitation is None:
            return Recorded(RecordResult.CLOSED, link)
        form = AnswerForm.from_fields(fields)
        if form.problems or form.answer is None:
            return Recorded(RecordResult.NEEDS_FIXING, link, form)
        now = self._clock()
        invitation = link.invitation.invitation
        stored = StoredAnswer(
            answer=form.answer,
            interpreter_language=form.interpreter_language if form.needs_interpreter else None,
            comment=form.comment,
            via=via,
            answered_at=now,
        )
        event = _rsvp_event(invitation, stored)
        changed, state = await self._store.record_answer(
            invitation.reference, stored, event=event, accept=lambda current: _state_of(current, now) is LinkState.OPEN
        )
        if state is None or _state_of(state, now) is not LinkState.OPEN:
            return Recorded(RecordResult.CLOSED, LinkCheck(_state_of(state, now), link.language, state), form)
        link = LinkCheck(LinkState.OPEN, link.language, state)
        if not changed:
            return Recorded(RecordResult.UNCHANGED, link, form)
        self._on_queued()
        logger.info(
            "answer %s via %s for meeting %s of school %s by guardian %s: event %s queued",
            stored.answer.value,
            via.value,
            invitation.meeting_id,
            invitation.school_id,
            invitation.guardian_id,
            event.event_id,
        )
        return Recorded(RecordResult.RECORDED, link, form)


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
    return OutboxEvent(
        position=0,  # given by the database
        event_id=event.id,
        event_type=MEETING_RSVP,
        key=partition_key(event),
        value=event.model_dump_json(exclude_none=True).encode(),
    )
