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
