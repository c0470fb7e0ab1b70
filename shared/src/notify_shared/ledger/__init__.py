"""The delivery ledger: every notification under a unique key, with its status and status history.

`DeliveryStatus`, `DeliveryKey` and `notification_id_for` import without SQLAlchemy (the event contract uses
them); the ledger itself and the database helpers are loaded on first use of their names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from notify_shared.ledger.keys import DeliveryKey, notification_id_for
from notify_shared.ledger.status import FINAL_STATUSES, IN_PROGRESS_STATUSES, DeliveryStatus

if TYPE_CHECKING:
    from notify_shared.ledger.database import (
        OutdatedTableError,
        create_engine,
        create_schema,
        metadata,
        read_transaction,
    )
    from notify_shared.ledger.ledger import DEFAULT_LEASE_SECONDS, Clock, DeliveryLedger
    from notify_shared.ledger.records import (
        Claim,
        ClaimRequest,
        DeliveryHistory,
        DeliveryRecord,
        StatusChange,
        SummaryRow,
        UnknownNotificationError,
    )
    from notify_shared.ledger.retry_queue import DEFAULT_RETRY_LEASE, DueRetry, QueuedNotification, RetryQueue
    from notify_shared.ledger.tables import deliveries, delivery_retries, delivery_status_history

# Names that need SQLAlchemy, and the module each comes from (PEP 562 lazy attributes).
_LAZY = {
    **dict.fromkeys(
        ["OutdatedTableError", "create_engine", "create_schema", "metadata", "read_transaction"], "database"
    ),
    **dict.fromkeys(["DEFAULT_LEASE_SECONDS", "Clock", "DeliveryLedger"], "ledger"),
    # The shapes the ledger answers with need no SQLAlchemy, but live next to it.
    **dict.fromkeys(
        [
            "Claim",
            "ClaimRequest",
            "DeliveryHistory",
            "DeliveryRecord",
            "StatusChange",
            "SummaryRow",
            "UnknownNotificationError",
        ],
        "records",
    ),
    **dict.fromkeys(["DEFAULT_RETRY_LEASE", "DueRetry", "QueuedNotification", "RetryQueue"], "retry_queue"),
    **dict.fromkeys(["deliveries", "delivery_retries", "delivery_status_history"], "tables"),
}

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_RETRY_LEASE",
    "FINAL_STATUSES",
    "IN_PROGRESS_STATUSES",
    "Claim",
    "ClaimRequest",
    "Clock",
    "DeliveryHistory",
    "DeliveryKey",
    "DeliveryLedger",
    "DeliveryRecord",
    "DeliveryStatus",
    "DueRetry",
    "OutdatedTableError",
    "QueuedNotification",
    "RetryQueue",
    "StatusChange",
    "SummaryRow",
    "UnknownNotificationError",
    "create_engine",
    "create_schema",
    "deliveries",
    "delivery_retries",
    "delivery_status_history",
    "metadata",
    "notification_id_for",
    "read_transaction",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
