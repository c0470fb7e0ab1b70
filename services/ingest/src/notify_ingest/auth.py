"""API keys: one per school. The key says which school is calling; the event must be about that school."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from pydantic import SecretStr


class ApiKeys:
    """Finds the school an API key belongs to, comparing in constant time."""

    def __init__(self, keys: Mapping[str, SecretStr]) -> None:
        self._keys = [(school_id, key.get_secret_value().encode()) for school_id, key in keys.items()]

    def school_for(self, presented: str | None) -> str | None:
        """The school whose key was presented, or None for a missing or unknown key."""
        if not presented:
            return None
        candidate = presented.encode()
        found = None
        # Every key is compared, with no early exit, so the answer's timing tells nothing about which school's
        # key came close (compare_digest itself only reveals whether the lengths differ).
        for school_id, key in self._keys:
            if hmac.compare_digest(candidate, key) and found is None:
                found = school_id
        return found
