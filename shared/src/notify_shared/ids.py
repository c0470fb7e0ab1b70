"""Ids for the events the platform itself produces."""

from __future__ import annotations

import uuid


def new_event_id() -> str:
    """A fresh CloudEvents id for an event we publish (status, dead letter)."""
    return str(uuid.uuid4())


def service_source(service: str) -> str:
    """The CloudEvents `source` of everything `service` publishes, e.g. `/notify/invitations`.

    Notifications a service starts itself (reminders, digests, merged notices) carry it as their source event's
    source in the delivery ledger, next to the id the service derived for them.
    """
    return f"/notify/{service}"
