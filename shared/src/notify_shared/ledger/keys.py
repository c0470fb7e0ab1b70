"""The idempotency key of a notification and the stable id derived from it.

Kept free of SQLAlchemy, like `status.py`, so code that only needs ids (rendering, the contract) stays light.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields

# Part of the hashed material: changing it gives every notification a new id. v2 added the school to the key
# (ids like meeting and guardian ids are only unique within one school), v3 the event's CloudEvents source (an
# event id is only unique per source), so no older id is ever produced again; see "Upgrading the database" in
# docs/operations.md.
_ID_SCHEME = "notify.delivery.v3"
NOTIFICATION_ID_LENGTH = 26
"""Hex characters in a notification id (104 bits: collisions are out of reach even at billions of rows)."""


@dataclass(frozen=True)
class DeliveryKey:
    """What makes a notification unique: one school's source event (its CloudEvents source and id), to one guardian,
    on one channel, with one template.

    A redelivered Kafka event produces the same keys again, which is how the ledger recognises repeats. The school
    is part of it because event and guardian ids are chosen by each school's systems: another school's event with
    the same ids is a different notification, never a repeat. The source is part of it because CloudEvents makes an
    id unique only per source: a school fed by two admin systems may get the same id from both.

    Notifications a service starts itself (a reminder, a digest) name the service as their source
    (`notify_shared.ids.service_source`) and a derived id as their event id.
    """

    school_id: str
    source: str
    source_event_id: str
    guardian_id: str
    channel: str
    template: str

    def __post_init__(self) -> None:
        # An empty part would silently merge notifications that should stay apart.
        empty = [field.name for field in fields(self) if not getattr(self, field.name)]
        if empty:
            raise ValueError(f"DeliveryKey needs every part; empty: {', '.join(empty)}")


def notification_id_for(key: DeliveryKey) -> str:
    """The notification's id: a deterministic hash of `key`, identical on every redelivery and every replica.

    It is used as the email Message-ID and the SMS reference, so it is short and only lowercase hex.
    """
    # JSON keeps the parts apart whatever characters ids contain ("a|b" + "c" must differ from "a" + "b|c").
    material = json.dumps(
        [_ID_SCHEME, key.school_id, key.source, key.source_event_id, key.guardian_id, str(key.channel), key.template],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:NOTIFICATION_ID_LENGTH]
