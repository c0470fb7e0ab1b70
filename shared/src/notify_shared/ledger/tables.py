"""The ledger's tables: one row per notification, and an append-only history of its statuses."""

from __future__ import annotations

import sqlalchemy as sa

from notify_shared.ledger.database import metadata
from notify_shared.ledger.keys import NOTIFICATION_ID_LENGTH

REASON_LENGTH = 200
DETAIL_LENGTH = 500

# SQLite turns only an INTEGER PRIMARY KEY into an auto-incrementing rowid; PostgreSQL gets a 64-bit id.
_HistoryId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("notification_id", sa.String(NOTIFICATION_ID_LENGTH), primary_key=True),
    sa.Column("source_event_source", sa.String(500), nullable=False, comment="The source event's CloudEvents source"),
    sa.Column("source_event_id", sa.String(200), nullable=False),
    sa.Column("source_event_type", sa.String(200), nullable=False),
    sa.Column("school_id", sa.String(200), nullable=False),
    sa.Column("guardian_id", sa.String(200), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("template", sa.String(100), nullable=False),
    sa.Column("language", sa.String(35), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column(
        "reason",
        sa.String(REASON_LENGTH),
        nullable=True,
        comment="Short machine code, e.g. retries_exhausted",
    ),
    sa.Column(
        "detail",
        sa.String(DETAIL_LENGTH),
        nullable=True,
        comment="Short text for operators; no personal data",
    ),
    sa.Column("provider", sa.String(50), nullable=True),
    sa.Column("provider_message_id", sa.String(200), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("segments", sa.Integer, nullable=True, comment="SMS segments billed"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # The idempotency key (`DeliveryKey`), school first: guardian ids are only unique within a school, and event
    # ids within a school and source.
    sa.UniqueConstraint(
        "school_id",
        "source_event_source",
        "source_event_id",
        "guardian_id",
        "channel",
        "template",
        name="uq_deliveries_key",
    ),
    # "Everything one source event caused" (`DeliveryLedger.history`), which the key's index no longer leads with.
    sa.Index("ix_deliveries_source_event_id", "source_event_id"),
    sa.Index("ix_deliveries_school_id_created_at", "school_id", "created_at"),
    sa.Index("ix_deliveries_status", "status"),
    # Delivery reports find their notification by the provider's reference (notify_shared.delivery_reports).
    sa.Index("ix_deliveries_provider_message_id", "provider", "provider_message_id"),
)

delivery_status_history = sa.Table(
    "delivery_status_history",
    metadata,
    sa.Column("id", _HistoryId, primary_key=True, autoincrement=True),
    sa.Column(
        "notification_id",
        sa.String(NOTIFICATION_ID_LENGTH),
        # CASCADE so a future retention job can delete old notifications without touching history first.
        sa.ForeignKey(deliveries.c.notification_id, ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reason", sa.String(REASON_LENGTH), nullable=True),
    sa.Column("detail", sa.String(DETAIL_LENGTH), nullable=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

delivery_retries = sa.Table(
    "delivery_retries",
    metadata,
    sa.Column(
        "notification_id",
        sa.String(NOTIFICATION_ID_LENGTH),
        # Deleted in the same transaction that records the notification's final status; CASCADE for retention.
        sa.ForeignKey(deliveries.c.notification_id, ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False, comment="The try this retry will be (2 for the first retry)"),
    sa.Column(
        "job",
        sa.Text,
        nullable=False,
        comment="The rendered notification and its recipient, as JSON; deleted when the notification is final",
    ),
    sa.Column("claimed_by", sa.String(200), nullable=True),
    sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
)

unpublished_statuses = sa.Table(
    "unpublished_statuses",
    metadata,
    sa.Column("id", _HistoryId, primary_key=True, autoincrement=True),
    # No foreign key: a status of a delivery report may be kept before its notification's row is visible here.
    sa.Column("notification_id", sa.String(NOTIFICATION_ID_LENGTH), nullable=False),
    sa.Column(
        "report",
        sa.Text,
        nullable=False,
        comment="The NotificationStatusReport as JSON (ids only); deleted once it is on the status topic",
    ),
    sa.Column("kept_at", sa.DateTime(timezone=True), nullable=False),
)

# Liveness of running senders (notify_shared.ledger.liveness): kept apart from `deliveries` so that a database
# made before they existed gains them by table creation alone, and so a heartbeat never touches hot rows.
delivery_senders = sa.Table(
    "delivery_senders",
    metadata,
    sa.Column("sender_id", sa.String(200), primary_key=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

delivery_claims = sa.Table(
    "delivery_claims",
    metadata,
    sa.Column(
        "notification_id",
        sa.String(NOTIFICATION_ID_LENGTH),
        sa.ForeignKey(deliveries.c.notification_id, ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("sender_id", sa.String(200), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, comment="The claim's `deliveries.attempts`: this claim only"),
)
