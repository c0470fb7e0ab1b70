"""The school and the guardians that every event carries inline, already resolved by the admin system."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from notify_shared.contract.contacts import normalise_email, normalise_phone
from notify_shared.contract.text import Identifier, LanguageTag, OneLine


class Channel(StrEnum):
    """A way to reach a guardian."""

    EMAIL = "email"
    SMS = "sms"


class DeliveryMode(StrEnum):
    """How a guardian wants routine messages: at once, in a daily or weekly digest, or not at all."""

    INSTANT = "instant"
    DAILY = "daily"
    WEEKLY = "weekly"
    OFF = "off"


class Rsvp(StrEnum):
    """A guardian's answer to a meeting invitation, where the admin system tracks it."""

    ACCEPTED = "accepted"
    TENTATIVE = "tentative"
    DECLINED = "declined"


class ContactProblem(StrEnum):
    """Why a channel cannot be used for a guardian; becomes the `reason` of a failed status."""

    MISSING_EMAIL = "missing_email"
    INVALID_EMAIL = "invalid_email"
    MISSING_PHONE = "missing_phone"
    INVALID_PHONE = "invalid_phone"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class School(_Strict):
    """The school that owns the event; it decides time zone, written standard and SMS sender."""

    id: Identifier = Field(description="The school's id in the admin system.", examples=["nor-0301-4012"])
    name: OneLine = Field(description="The school's name as parents know it.", examples=["Bjølsen skole"])
    timezone: str = Field(
        default="Europe/Oslo",
        description="IANA time zone all local times are computed in.",
        examples=["Europe/Oslo"],
    )
    written_standard: Literal["nb", "nn"] = Field(
        default="nb",
        description="The school's main written Norwegian (bokmål or nynorsk): the fallback language.",
    )
    sms_sender_id: str = Field(
        pattern=r"^[A-Za-z0-9 ]{1,11}$",
        description="Alphanumeric SMS sender id, at most 11 characters, with at least one letter; "
        "networks reject other characters (including æ, ø, å).",
        examples=["Bjolsen"],
        # The schema says "at least one letter" too, which the pattern above cannot (the validator below checks it,
        # with a clearer message): 1 to 11 of these characters, one of them a letter.
        json_schema_extra={"pattern": r"^[A-Za-z0-9 ]*[A-Za-z][A-Za-z0-9 ]*$", "minLength": 1, "maxLength": 11},
    )

    @field_validator("sms_sender_id")
    @classmethod
    def _sender_has_a_letter(cls, value: str) -> str:
        # An all-digit sender is read as a phone number by the networks, and replies would go astray.
        if not any(character.isalpha() for character in value):
            raise ValueError("an alphanumeric sender id needs at least one letter")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        # The key becomes a path under the tz database, so a hostile one fails in other ways than "not found":
        # "Europe" is a directory, a very long key is a file name too long (both OSError). The message does
        # not repeat the value: dead letters never echo what was sent.
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as error:
            raise ValueError("unknown IANA time zone; use a name such as 'Europe/Oslo'") from error
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Recipient(_Strict):
    """A guardian to notify, with the contact points and preferences the admin system holds for them."""

    guardian_id: Identifier = Field(description="The guardian's id in the admin system.", examples=["g-50321"])
    name: OneLine = Field(description="The guardian's name, used in the greeting.", examples=["Kari Nordmann"])
    email: str | None = Field(
        default=None,
        max_length=320,
        description="Email address; validated and normalised. An invalid address fails only the email channel.",
        examples=["kari.nordmann@example.no"],
    )
    phone: str | None = Field(
        default=None,
        max_length=40,
        description="Mobile number in E.164 (+4791234567) or Norwegian national form (912 34 567); "
        "normalised to E.164. An invalid number fails only the SMS channel.",
        examples=["+4791234567"],
    )
    language: LanguageTag = "nb"
    channels: tuple[Channel, ...] = Field(
        default=(Channel.EMAIL,), description="The channels this guardian wants notifications on."
    )
    has_parental_responsibility: bool = Field(
        description="Foreldreansvar. Without it a parent gets information only on request, so no routine "
        "notification is sent."
    )
    blocked: bool = Field(default=False, description="A manual block set by the school: send nothing.")
    rsvp: Rsvp | None = Field(default=None, description="The guardian's answer to the invitation, if known.")
    delivery_mode: DeliveryMode | None = Field(
        default=None,
        description="Digest preference for routine messages; the school default applies when absent.",
    )

    _contact_problems: dict[Channel, ContactProblem] = PrivateAttr(default_factory=dict)

    @field_validator("channels")
    @classmethod
    def _distinct_channels(cls, value: tuple[Channel, ...]) -> tuple[Channel, ...]:
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _normalise_contact_points(self) -> Recipient:
        # frozen model: normalised values are written with object.__setattr__ during validation only.
        problems: dict[Channel, ContactProblem] = {}
        if self.email is None:
            problems[Channel.EMAIL] = ContactProblem.MISSING_EMAIL
        elif (email := normalise_email(self.email)) is None:
            problems[Channel.EMAIL] = ContactProblem.INVALID_EMAIL
        else:
            object.__setattr__(self, "email", email)
        if self.phone is None:
            problems[Channel.SMS] = ContactProblem.MISSING_PHONE
        elif (phone := normalise_phone(self.phone)) is None:
            problems[Channel.SMS] = ContactProblem.INVALID_PHONE
        else:
            object.__setattr__(self, "phone", phone)
        self._contact_problems = problems
        return self

    @property
    def may_receive_routine_notifications(self) -> bool:
        """Eligibility, checked on every send: parental responsibility and no block."""
        return self.has_parental_responsibility and not self.blocked

    def contact_problem(self, channel: Channel) -> ContactProblem | None:
        """Why `channel` cannot reach this guardian, or None when it can."""
        return self._contact_problems.get(channel)
