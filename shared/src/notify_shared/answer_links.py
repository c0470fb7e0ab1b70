"""Personal answer links: `PUBLIC_BASE_URL/r/<token>`, signed by the services that send invitations and checked by
the responses service (docs/responses.md).

A token is a credential: whoever holds it may answer for one guardian to one meeting. It is built to be short
enough for an SMS and to say nothing about anyone:

    <key id: 1 character><base64url, no padding, of 25 bytes>
        expires: 4 bytes, big-endian Unix seconds (the meeting's start when it was signed)
        invitation: 9 bytes, the first bytes of SHA-256 over school id, meeting id and guardian id
        signature: 12 bytes, the first bytes of HMAC-SHA256(key, "notify-answer-link/1" | key id | expires |
                   invitation)

35 characters in all. The token names no person: the invitation reference is a digest of ids that only the
school's systems (and the responses service, which learns them from the meeting events) can map back. The
signature binds key id, expiry and invitation together, so changing any character makes the token invalid.

Booking links for development talks (`PUBLIC_BASE_URL/b/<token>`) are the same tokens, carrying a
`booking_reference` of school, round, pupil and guardian instead, and expiring when booking closes.

Keys are rotated by key id: one key signs (`ANSWER_LINK_SIGNING_KEY_ID`), every key listed in
`ANSWER_LINK_KEYS` verifies, so links sent before a rotation keep working until their key is removed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

KEY_ID_CHARACTERS: Final = string.ascii_letters + string.digits
"""A key id is one of these characters: it is the first character of every token it signs."""
MIN_KEY_BYTES: Final = 32
"""Keys shorter than this (in UTF-8 bytes) are refused: the signature is only as strong as the key."""

_DOMAIN: Final = b"notify-answer-link/1"
_EXPIRES_BYTES: Final = 4
_INVITATION_BYTES: Final = 9
_SIGNATURE_BYTES: Final = 12
_BODY_BYTES: Final = _EXPIRES_BYTES + _INVITATION_BYTES + _SIGNATURE_BYTES
TOKEN_LENGTH: Final = 1 + len(base64.urlsafe_b64encode(bytes(_BODY_BYTES)).rstrip(b"="))
"""Every valid token has exactly this many characters (35)."""
LATEST_EXPIRY: Final = datetime(2106, 2, 7, tzinfo=UTC)
"""Four bytes of Unix seconds end here; a meeting after it cannot be signed."""

ANSWER_PATH: Final = "/r/"
"""The path of the answer page, before the token."""
BOOKING_PATH: Final = "/b/"
"""The path of the development-talk booking page, before the token."""


class Rejection(StrEnum):
    """Why a token was not accepted: also the `reason` label of the rejected-token metric."""

    MALFORMED = "malformed"
    """Wrong length or characters: not a token this platform made."""
    UNKNOWN_KEY = "unknown_key"
    """Signed with a key id that is not (or no longer) listed."""
    BAD_SIGNATURE = "bad_signature"
    """The signature does not match: altered, or forged."""
    EXPIRED = "expired"
    """Genuine, but the meeting has started."""


class TokenRejectedError(Exception):
    """The token cannot be used; `reason` says why (for metrics; a parent is never told more than "not valid")."""

    def __init__(self, reason: Rejection, *, invitation: bytes | None = None) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.invitation = invitation
        """For `EXPIRED` only: the genuine invitation reference, so the page can be in the guardian's language."""


def invitation_reference(school_id: str, meeting_id: str, guardian_id: str) -> bytes:
    """The 9-byte reference a token carries for one guardian's invitation to one meeting.

    The responses service stores it with the ids when it reads the meeting event, and finds the invitation by it.
    The ids are separated by a byte that no identifier may contain, so no two triples run together the same.
    """
    joined = "\x1f".join((school_id, meeting_id, guardian_id)).encode()
    return hashlib.sha256(b"notify-invitation/1\x00" + joined).digest()[:_INVITATION_BYTES]


def booking_reference(school_id: str, round_id: str, pupil_id: str, guardian_id: str) -> bytes:
    """The 9-byte reference a booking token carries: one guardian's link to book one pupil's talk in one round.

    Hashed under its own prefix, so that no booking reference can equal an invitation reference.
    """
    joined = "\x1f".join((school_id, round_id, pupil_id, guardian_id)).encode()
    return hashlib.sha256(b"notify-talk-booking/1\x00" + joined).digest()[:_INVITATION_BYTES]


@dataclass(frozen=True)
class AnswerLink:
    """What a verified token says."""

    key_id: str
    invitation: bytes
    """`invitation_reference` of the school, meeting and guardian it was made for."""
    expires_at: datetime


class AnswerLinkKeys:
    """Signs with one key, verifies with every listed key."""

    def __init__(self, keys: dict[str, bytes], *, signing_key_id: str) -> None:
        for key_id, key in keys.items():
            _check_key(key_id, key)
        if signing_key_id not in keys:
            raise ValueError("the signing key id must be one of the listed keys")
        self._keys = dict(keys)
        self._signing_key_id = signing_key_id

    @classmethod
    def from_settings(cls, settings: AnswerLinkSettings) -> AnswerLinkKeys:
        """The keys the settings give; ValueError when answer links are not configured."""
        if not settings.answer_link_keys or settings.answer_link_signing_key_id is None:
            raise ValueError("answer links need ANSWER_LINK_KEYS, ANSWER_LINK_SIGNING_KEY_ID and PUBLIC_BASE_URL")
        keys = {key_id: secret.get_secret_value().encode() for key_id, secret in settings.answer_link_keys.items()}
        return cls(keys, signing_key_id=settings.answer_link_signing_key_id)

    @property
    def signing_key_id(self) -> str:
        return self._signing_key_id

    def sign(self, *, school_id: str, meeting_id: str, guardian_id: str, expires_at: datetime) -> str:
        """A token for this guardian's answer to this meeting, valid until `expires_at` (the meeting's start)."""
        return self.sign_reference(invitation_reference(school_id, meeting_id, guardian_id), expires_at=expires_at)

    def sign_booking(
        self, *, school_id: str, round_id: str, pupil_id: str, guardian_id: str, expires_at: datetime
    ) -> str:
        """A token for this guardian's booking of this pupil's development talk in this round, valid until
        `expires_at` (when booking closes). The same form as an answer token; only the reference differs."""
        reference = booking_reference(school_id, round_id, pupil_id, guardian_id)
        return self.sign_reference(reference, expires_at=expires_at)

    def sign_reference(self, reference: bytes, *, expires_at: datetime) -> str:
        """A token carrying `reference` (9 bytes, from `invitation_reference` or `booking_reference`)."""
        if len(reference) != _INVITATION_BYTES:
            raise ValueError(f"a reference is {_INVITATION_BYTES} bytes")
        if expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")
        if expires_at >= LATEST_EXPIRY:
            raise ValueError("expires_at is too far in the future for a token")
        seconds = max(int(expires_at.timestamp()), 0)
        head = seconds.to_bytes(_EXPIRES_BYTES, "big") + reference
        body = head + self._signature(self._signing_key_id, head)
        return self._signing_key_id + base64.urlsafe_b64encode(body).rstrip(b"=").decode("ascii")

    def verify(self, token: str, *, now: datetime) -> AnswerLink:
        """The link's contents, or `TokenRejectedError` with the reason. Any string may be passed, of any length.

        The signature is compared in constant time; a token with a valid signature but past its expiry is
        `EXPIRED`, so a parent who opens an old link can be told that the meeting has started.
        """
        if len(token) != TOKEN_LENGTH or not token.isascii():
            raise TokenRejectedError(Rejection.MALFORMED)
        key_id, encoded = token[0], token[1:]
        try:
            body = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise TokenRejectedError(Rejection.MALFORMED) from None
        # Decoding forgives some characters (and unused low bits); re-encoding must give the token back, so that
        # exactly one spelling of each token exists.
        if len(body) != _BODY_BYTES or base64.urlsafe_b64encode(body).rstrip(b"=").decode("ascii") != encoded:
            raise TokenRejectedError(Rejection.MALFORMED)
        if key_id not in self._keys:
            raise TokenRejectedError(Rejection.UNKNOWN_KEY)
        head, signature = body[:-_SIGNATURE_BYTES], body[-_SIGNATURE_BYTES:]
        if not hmac.compare_digest(self._signature(key_id, head), signature):
            raise TokenRejectedError(Rejection.BAD_SIGNATURE)
        expires_at = datetime.fromtimestamp(int.from_bytes(head[:_EXPIRES_BYTES], "big"), UTC)
        if now >= expires_at:
            raise TokenRejectedError(Rejection.EXPIRED, invitation=head[_EXPIRES_BYTES:])
        return AnswerLink(key_id=key_id, invitation=head[_EXPIRES_BYTES:], expires_at=expires_at)

    def form_proof(self, token: str) -> str:
        """The anti-forgery value of the answer form behind `token`: only a page this service rendered for that
        link carries it, so a form on another site cannot post an answer. Signed with the current key."""
        message = _DOMAIN + b"|form|" + token.encode("utf-8", "replace")
        digest = hmac.new(self._keys[self._signing_key_id], message, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def form_proof_matches(self, token: str, proof: str | None) -> bool:
        """Whether `proof` is `form_proof(token)`, compared in constant time."""
        if not proof:
            return False
        return hmac.compare_digest(self.form_proof(token).encode(), proof.encode("utf-8", "replace"))

    def _signature(self, key_id: str, head: bytes) -> bytes:
        message = _DOMAIN + b"|" + key_id.encode("ascii") + b"|" + head
        return hmac.new(self._keys[key_id], message, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def answer_url(public_base_url: str, token: str) -> str:
    """The link a parent opens: `PUBLIC_BASE_URL/r/<token>`."""
    return public_base_url.rstrip("/") + ANSWER_PATH + token


def booking_url(public_base_url: str, token: str) -> str:
    """The link a parent opens to book a development talk: `PUBLIC_BASE_URL/b/<token>`."""
    return public_base_url.rstrip("/") + BOOKING_PATH + token


def _check_key(key_id: str, key: bytes) -> None:
    if len(key_id) != 1 or key_id not in KEY_ID_CHARACTERS:
        raise ValueError("a key id is one letter or digit (it is the first character of each token)")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the key of id {key_id!r} is shorter than {MIN_KEY_BYTES} bytes")


class AnswerLinkSettings(BaseSettings):
    """The settings of every service that makes or checks answer links (docs/operations.md).

    Mixed into a service's settings class; the names carry no service prefix, because the invitations service
    and the responses service must be given the same keys and base URL. All three or none: without them the
    invitations service sends invitations without a link, and the responses service does not start.
    """

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True, validate_by_name=True)

    # NoDecode: parsed by `_parse_keys`, so a malformed value names ANSWER_LINK_KEYS without echoing it.
    answer_link_keys: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=dict,
        validation_alias="ANSWER_LINK_KEYS",
        description='JSON object of key id (one letter or digit) to secret key (at least 32 bytes), e.g. {"a": "…"}. '
        "Every listed key verifies answer links; remove a key to invalidate the links it signed.",
    )
    answer_link_signing_key_id: str | None = Field(
        default=None,
        validation_alias="ANSWER_LINK_SIGNING_KEY_ID",
        description="The key id (from ANSWER_LINK_KEYS) that signs new answer links.",
    )
    public_base_url: str | None = Field(
        default=None,
        validation_alias="PUBLIC_BASE_URL",
        pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
        description="Where parents reach the responses service's page, e.g. https://svar.skole.example; "
        "answer links are <this>/r/<token>.",
    )

    @property
    def answer_links_enabled(self) -> bool:
        return bool(self.answer_link_keys)

    @field_validator("answer_link_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"not a JSON object ({error.msg} at character {error.pos})") from None

    @field_validator("answer_link_keys")
    @classmethod
    def _usable_keys(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for key_id, secret in keys.items():
            _check_key(key_id, secret.get_secret_value().encode())
        return keys

    @model_validator(mode="after")
    def _all_or_none(self) -> AnswerLinkSettings:
        given = (bool(self.answer_link_keys), self.answer_link_signing_key_id is not None, bool(self.public_base_url))
        if any(given) and not all(given):
            raise ValueError(
                "ANSWER_LINK_KEYS, ANSWER_LINK_SIGNING_KEY_ID and PUBLIC_BASE_URL go together: set all three, or none"
            )
        if self.answer_link_keys and self.answer_link_signing_key_id not in self.answer_link_keys:
            raise ValueError("ANSWER_LINK_SIGNING_KEY_ID must be one of the key ids in ANSWER_LINK_KEYS")
        return self
