"""What parents answer to an invitation: `meeting.rsvp`, published by the responses service (docs/responses.md)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from notify_shared.contract.parties import Rsvp
from notify_shared.contract.text import Identifier, Instant, LanguageTag

MAX_COMMENT_LENGTH = 500
"""Characters a parent may write to the school with an answer."""


class AnswerChannel(StrEnum):
    """How the answer reached the platform."""

    WEB = "web"
    """The answer page behind the link in the invitation."""
    SMS = "sms"
    """A reply to the invitation SMS."""


def _no_blank_comment(value: str | None) -> str | None:
    return value if value and value.strip() else None


Comment = Annotated[
    str | None,
    StringConstraints(max_length=MAX_COMMENT_LENGTH),
    AfterValidator(_no_blank_comment),
]


class GuardianAnswer(BaseModel):
    """`data` of meeting.rsvp: one guardian's latest answer to one meeting."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    school_id: Identifier = Field(examples=["nor-0301-bjolsen"])
    meeting_id: Identifier = Field(description="The meeting answered; also the Kafka key.", examples=["m-2026-7b-1"])
    guardian_id: Identifier = Field(description="The guardian who answered.", examples=["g-50321"])
    answer: Rsvp = Field(description="accepted (coming), declined (not coming) or tentative (not sure yet).")
    interpreter_language: LanguageTag | None = Field(
        default=None, description="The language the guardian needs an interpreter for; null when none is needed."
    )
    comment: Comment = Field(
        default=None,
        description="What the guardian wrote to the school, as typed (at most 500 characters); null when nothing. "
        "Free text from a parent: show it escaped, never log it.",
    )
    answered_at: Instant = Field(description="When the platform received the answer.")
    via: AnswerChannel = Field(description="web (the answer page) or sms (a reply to the invitation SMS).")


class UnrecognisedReason(StrEnum):
    """Why an SMS reply was not recorded as an answer."""

    NOT_UNDERSTOOD = "not_understood"
    """From a guardian with an open invitation, but it says neither yes, no nor maybe."""
    NO_OPEN_INVITATION = "no_open_invitation"
    """From a guardian's number, but no invitation of theirs takes answers now."""
    UNKNOWN_NUMBER = "unknown_number"
    """From a number no invitation was sent to."""


class UnrecognisedReply(BaseModel):
    """`data` of sms.reply-unrecognised: an SMS reply that could not be read as an answer, for the school to see."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: UnrecognisedReason
    school_id: Identifier | None = Field(default=None, description="The school, when the number is a guardian's.")
    meeting_id: Identifier | None = Field(
        default=None, description="The guardian's latest open invitation, when there is one."
    )
    guardian_id: Identifier | None = Field(default=None, description="The guardian, when the number is known.")
    text: str = Field(
        max_length=1600, description="The reply as received (a parent's own words: show escaped, never log)."
    )
    received_at: Instant
