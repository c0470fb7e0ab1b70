"""Ids for the events the platform itself produces."""

from __future__ import annotations

import uuid


def new_event_id() -> str:
    """A fresh CloudEvents id for an event we publish (status, dead letter)."""
    return str(uuid.uuid4())
