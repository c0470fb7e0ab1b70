"""Helpers shared by the ledger's statements: chunking, UTC times, column-sized texts and row conversion."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from notify_shared.ledger.database import utc_from_db
from notify_shared.ledger.records import DeliveryRecord
from notify_shared.ledger.status import DeliveryStatus
from notify_shared.ledger.tables import deliveries

# Ids per statement: well below the bind parameter limits of SQLite (32766) and asyncpg (32767).
CHUNK_SIZE = 500

_T = TypeVar("_T")


def status_change(
    notification_id: str, status: DeliveryStatus, reason: str | None, at: datetime, *, detail: str | None = None
) -> dict[str, Any]:
    return {
        "notification_id": notification_id,
        "status": status.value,
        "reason": reason,
        "detail": detail,
        "at": at,
    }


def fit(column: str, value: str | None) -> str | None:
    # A status must never fail to be recorded because a provider sent a long text: PostgreSQL would reject it,
    # after the message went out.
    length = getattr(deliveries.c[column].type, "length", None)
    if value is None or length is None or len(value) <= length:
        return value
    return value[: length - 1] + "…"


def chunks(items: list[_T]) -> Iterator[list[_T]]:
    for start in range(0, len(items), CHUNK_SIZE):
        yield items[start : start + CHUNK_SIZE]


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: the ledger needs timezone-aware times")
    return moment.astimezone(UTC)


def delivery_from(row: sa.Row[Any]) -> DeliveryRecord:
    return DeliveryRecord(
        notification_id=row.notification_id,
        source_event_source=row.source_event_source,
        source_event_id=row.source_event_id,
        source_event_type=row.source_event_type,
        school_id=row.school_id,
        guardian_id=row.guardian_id,
        channel=row.channel,
        template=row.template,
        language=row.language,
        status=DeliveryStatus(row.status),
        reason=row.reason,
        detail=row.detail,
        provider=row.provider,
        provider_message_id=row.provider_message_id,
        attempts=row.attempts,
        segments=row.segments,
        created_at=utc_from_db(row.created_at),
        updated_at=utc_from_db(row.updated_at),
    )
