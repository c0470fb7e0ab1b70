"""Messages that teachers post to a class or to guardians: news, weekly letters, practical notices."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from notify_shared.contract.parties import Recipient, School
from notify_shared.contract.text import Identifier, Instant, OneLine


class PostedMessage(BaseModel):
    """`data` of message.posted."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    school: School
    message_id: Identifier = Field(examples=["msg-88213"])
    class_id: Identifier | None = Field(default=None, description="The class it was posted to, if any.")
    class_name: OneLine | None = Field(default=None, examples=["7B"])
    pupil_id: Identifier | None = Field(default=None, description="The pupil it concerns, for a personal message.")
    pupil_first_name: OneLine | None = Field(
        default=None, description="That pupil's first name, so a digest can group messages by child."
    )
    author_name: OneLine = Field(description="Who wrote it.", examples=["Ola Lærer"])
    subject: OneLine = Field(examples=["Tur til Sognsvann fredag"])
    body: str = Field(
        min_length=1,
        max_length=20_000,
        description="Plain text or Markdown; rendered safely, never as raw HTML.",
    )
    urgent: bool = Field(default=False, description="Urgent messages go out at once, whatever the digest setting.")
    posted_at: Instant
    recipients: tuple[Recipient, ...] = Field(max_length=2000)
