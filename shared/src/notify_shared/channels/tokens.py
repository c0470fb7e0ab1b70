"""Turning a notification id into a token that is safe in a file name and in a Message-ID."""

from __future__ import annotations

import hashlib
import re

_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9._-]")


def safe_token(notification_id: str) -> str:
    """The id itself when it is already safe (UUIDs, hex digests); otherwise a cleaned prefix plus a digest.

    The digest keeps two ids that clean to the same text (`a/b`, `a:b`) from sharing a file or a Message-ID.
    """
    if _SAFE.fullmatch(notification_id):
        return notification_id
    digest = hashlib.sha256(notification_id.encode("utf-8")).hexdigest()[:24]
    cleaned = _UNSAFE_CHAR.sub("_", notification_id).lstrip(".-")[:60]
    return f"{cleaned}-{digest}" if cleaned else digest
