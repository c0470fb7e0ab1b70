"""API keys: one per school. The key says which school is calling; the event must be about that school.

The ingest keeps only the SHA-256 of each key: `INGEST_API_KEYS` holds `sha256:<64 hex digits>` per school, so a
leaked setting, memory dump or log line does not let anyone post. Keys are long random strings, not passwords, so
a plain SHA-256 (no salt, no slow hash) is enough: nobody can search 256 random bits.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import SecretStr

DIGEST_PREFIX = "sha256:"
PLACEHOLDER_MARK = "change-me"
"""Found (in any case) in the example keys of deploy/ and docs/: a deployment that kept one must not start."""
MIN_API_KEY_LENGTH = 16
"""Shorter plain keys could be guessed; docs/ingest.md shows how to make a good one."""

_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


def api_key_digest(key: str) -> str:
    """The value to put in `INGEST_API_KEYS` for `key`: `sha256:` and the hex SHA-256 of its UTF-8 bytes."""
    return DIGEST_PREFIX + hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class StoredKey:
    """One school's key as the ingest holds it: the SHA-256 only."""

    sha256: bytes = field(repr=False)
    configured_plain: bool
    """True for a key given in plain text (accepted while deployments move to hashes; a warning at start-up)."""


class UnusableKeyError(ValueError):
    """Why a configured key cannot be used; says which kind of problem, never the value."""


def stored_key(configured: str | SecretStr | StoredKey) -> StoredKey:
    """The key as configured in `INGEST_API_KEYS`, a `sha256:` digest or (for now) the plain key."""
    if isinstance(configured, StoredKey):
        return configured
    value = configured.get_secret_value() if isinstance(configured, SecretStr) else configured
    if PLACEHOLDER_MARK in value.lower():
        raise UnusableKeyError("is the example placeholder (CHANGE-ME…), not a key")
    if value.startswith(DIGEST_PREFIX):
        hex_digest = value.removeprefix(DIGEST_PREFIX)
        if not _HEX_DIGEST.fullmatch(hex_digest):
            raise UnusableKeyError("starts with sha256: but is not followed by 64 hexadecimal digits")
        return StoredKey(sha256=bytes.fromhex(hex_digest), configured_plain=False)
    if len(value) < MIN_API_KEY_LENGTH:
        raise UnusableKeyError(f"is shorter than {MIN_API_KEY_LENGTH} characters")
    return StoredKey(sha256=hashlib.sha256(value.encode()).digest(), configured_plain=True)


class ApiKeys:
    """Finds the school an API key belongs to, comparing digests in constant time."""

    def __init__(self, keys: Mapping[str, StoredKey]) -> None:
        self._keys = [(school_id, key.sha256) for school_id, key in keys.items()]

    def school_for(self, presented: str | None) -> str | None:
        """The school whose key was presented, or None for a missing or unknown key."""
        if not presented:
            return None
        candidate = hashlib.sha256(presented.encode()).digest()
        found = None
        # Every digest is compared, with no early exit, so the answer's timing tells nothing about which school's
        # key came close.
        for school_id, digest in self._keys:
            if hmac.compare_digest(candidate, digest) and found is None:
                found = school_id
        return found
