"""Automatic SMS answers to SMS replies: help for a reply that is no answer, a short confirmation for one that is.

What is answered, and why (docs/responses.md, "Automatic answers by SMS"):

- A reply that says neither yes, no nor maybe gets the words that work; one from a guardian whose invitations are
  all closed gets "nothing is waiting for your answer"; a recorded answer (only a new or changed one) gets
  "we have recorded: coming". Each in the guardian's language, else the school's standard, else bokmål.
- At most one automatic SMS per number per local day, of any kind: the database holds the count
  (`notify_responses.auto_reply_cap`), so two replicas racing cannot both send. Together with the next rule this
  makes a loop with an auto-responder impossible: it gets one SMS a day from us, whatever it sends back.
- Never to a message that looks automatic (out of office, "I'm driving", our own link echoed back) nor to a STOP
  keyword, which the provider or operator answers itself.
- Never to a number no invitation was sent to, nor to a guardian an update left out: there is no school to sign
  the SMS, the guardian may no longer be eligible, and answering strangers' numbers is how SMS-pumping fraud
  makes money.
- Sent through the delivery core like any notification: claimed in the ledger, a `notification.status` event,
  held through quiet hours, retried while the provider fails.

Neither the number nor the text is ever logged.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

from notify_responses.auto_reply_cap import DailyAutoReplyCap
from notify_responses.service import RecordResult, SmsReplyOutcome
from notify_responses.sms_replies import fold
from notify_shared.contract import Channel, Recipient, School, UnrecognisedReason
from notify_shared.delivery import Dispatcher, PlannedNotification, SourceEventRef
from notify_shared.ids import service_source
from notify_shared.quiet_hours import QuietHours

logger = logging.getLogger(__name__)

TEMPLATE = "sms_reply"
SOURCE_TYPE = "sms.reply"
"""The `source` type of the automatic answers in the ledger and in their status events."""
SOURCE = service_source("responses")
"""The source of automatic answers in the ledger: the service starts them itself, under ids it derived."""

_IDS = uuid.UUID("0f3c3f55-4a1e-4b8e-9d8e-52c1d5b0a7a1")
"""Namespace of the ids derived from a provider's message id: a webhook retried later finds its claim."""


class AutoReplyMode(StrEnum):
    """RESPONSES_SMS_AUTO_REPLIES."""

    OFF = "off"
    HELP = "help"
    """Only the help for a reply that is no answer or comes with nothing open."""
    HELP_AND_CONFIRMATION = "help_and_confirmation"
    """The help, and a confirmation of a new or changed answer."""


class AutoReplyKind(StrEnum):
    NOT_UNDERSTOOD = "not_understood"
    NOTHING_OPEN = "nothing_open"
    RECORDED = "recorded"


# Folded (see sms_replies.fold), matched as whole words anywhere in the text: what auto-responders, phones set to
# "driving" and carriers' notices write, in Norwegian, English and the other languages parents' phones run in.
_AUTOMATIC_PHRASES: Final = tuple(
    fold(phrase)
    for phrase in (
        "auto reply",
        "autoreply",
        "auto-reply",
        "automatic reply",
        "automated message",
        "automatisk svar",
        "autosvar",
        "automatisk melding",
        "out of office",
        "out of the office",
        "i'm driving",
        "i am driving",
        "driving mode",
        "jeg kjører",
        "kjører bil",
        "eg køyrer",
        "fraværende",
        "fråverande",
        "ikke tilgjengelig",
        "ikkje tilgjengeleg",
        "do not reply",
        "don't reply",
        "noreply",
        "no reply",
        "not monitored",
        "svar ikke på",
        "automatyczna odpowiedź",
        "automatische antwort",
        "abwesenheitsnotiz",
        "автоматична відповідь",
        "otomatik yanıt",
        "tin nhắn tự động",
        "رد آلي",
        "رد تلقائي",
    )
)
# Keywords that unsubscribe or ask for help at the provider: the provider or the operator answers these.
_CARRIER_KEYWORDS: Final = frozenset({"stop", "stopp", "unsubscribe", "avmeld", "avslutt", "end", "quit", "cancel"})


def looks_automatic(text: str, public_base_url: str) -> bool:
    """True for a message no person typed as an answer: an auto-responder's, a carrier keyword, our own SMS echoed."""
    if public_base_url.rstrip("/").split("://", 1)[-1].casefold() in text.casefold() or "/r/" in text:
        return True
    folded = fold(text)
    if folded in _CARRIER_KEYWORDS:
        return True
    padded = f" {folded} "
    return any(f" {phrase} " in padded for phrase in _AUTOMATIC_PHRASES)


def kind_of(outcome: SmsReplyOutcome, mode: AutoReplyMode) -> AutoReplyKind | None:
    """What automatic answer `outcome` calls for under `mode`, if any."""
    if mode is AutoReplyMode.OFF:
        return None
    if outcome.result is RecordResult.RECORDED:
        return AutoReplyKind.RECORDED if mode is AutoReplyMode.HELP_AND_CONFIRMATION else None
    if outcome.result is RecordResult.CLOSED or outcome.reason is UnrecognisedReason.NO_OPEN_INVITATION:
        return AutoReplyKind.NOTHING_OPEN
    if outcome.reason is UnrecognisedReason.NOT_UNDERSTOOD:
        return AutoReplyKind.NOT_UNDERSTOOD
    # The same answer again (nothing new to confirm), or a number no invitation went to.
    return None


class AutoReplier:
    """Decides whether an SMS reply gets an automatic answer, takes the day's slot, and hands the SMS to the
    delivery core."""

    def __init__(
        self,
        *,
        cap: DailyAutoReplyCap,
        dispatcher: Dispatcher,
        mode: AutoReplyMode,
        quiet_hours: QuietHours,
        public_base_url: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._cap = cap
        self._dispatcher = dispatcher
        self._mode = mode
        self._quiet_hours = quiet_hours
        self._public_base_url = public_base_url
        self._clock = clock

    async def answer(self, *, phone: str, text: str, outcome: SmsReplyOutcome, reply_id: str) -> AutoReplyKind | None:
        """Send the automatic answer `outcome` calls for, unless a rule above says not to. Returns what was
        handed to the delivery core (sent at once or held through quiet hours), or None."""
        kind = kind_of(outcome, self._mode)
        state = outcome.invitation
        if kind is None or state is None:
            return None
        invitation, meeting = state.invitation, state.meeting
        if not state.invited or meeting.sms_sender_id is None:
            return None
        if looks_automatic(text, self._public_base_url):
            logger.info(
                "SMS reply from guardian %s of school %s looks automatic: not answered",
                invitation.guardian_id,
                invitation.school_id,
            )
            return None
        now = self._clock()
        zone = ZoneInfo(meeting.timezone)
        if not await self._cap.take(phone, now.astimezone(zone).date(), kind=kind.value, at=now):
            logger.info(
                "SMS reply from guardian %s of school %s: an automatic answer went to that number today already",
                invitation.guardian_id,
                invitation.school_id,
            )
            return None
        school = School(
            id=invitation.school_id,
            name=meeting.school_name,
            timezone=meeting.timezone,
            written_standard="nn" if meeting.written_standard == "nn" else "nb",
            sms_sender_id=meeting.sms_sender_id,
        )
        # The service keeps no names and the answer greets nobody: the id stands in where a name is required.
        guardian = Recipient(
            guardian_id=invitation.guardian_id,
            name=invitation.guardian_id,
            phone=phone,
            language=invitation.language,
            channels=(Channel.SMS,),
            # Only guardians who may receive routine notifications are invited (ResponsesService.apply).
            has_parental_responsibility=True,
        )
        plan = PlannedNotification(
            source=SourceEventRef(source=SOURCE, id=str(uuid.uuid5(_IDS, reply_id)), type=SOURCE_TYPE, time=now),
            school=school,
            guardian=guardian,
            channel=Channel.SMS,
            template=TEMPLATE,
            context={
                "school": school,
                "guardian": guardian,
                "reply_kind": kind.value,
                "answer": outcome.answer.value if outcome.answer is not None else None,
            },
            not_before=self._quiet_hours.end_after(now, zone),
        )
        try:
            (delivered,) = await self._dispatcher.dispatch([plan])
        except Exception as error:
            # The reply itself is recorded; the slot stays taken, so this number gets no second try today.
            logger.warning(
                "automatic answer %s to guardian %s of school %s not sent: %s",
                kind.value,
                invitation.guardian_id,
                invitation.school_id,
                type(error).__name__,
            )
            return None
        logger.info(
            "automatic answer %s to guardian %s of school %s: notification %s %s",
            kind.value,
            invitation.guardian_id,
            invitation.school_id,
            delivered.notification_id,
            delivered.status.value,
        )
        return kind
