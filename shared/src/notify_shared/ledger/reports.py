"""Applying a provider's delivery report to the notification it is about (`DeliveryLedger.apply_provider_report`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from notify_shared.ledger.provider_reports import REPORTED_STATUSES, ProviderReportResult, ReportOutcome
from notify_shared.ledger.rows import delivery_from, fit, status_change
from notify_shared.ledger.status import DeliveryStatus
from notify_shared.ledger.tables import deliveries, delivery_status_history


class ReportApplier:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def apply(
        self,
        provider: str,
        provider_message_id: str | None,
        status: DeliveryStatus,
        reason: str | None = None,
        *,
        notification_id: str | None = None,
        now: datetime,
    ) -> ProviderReportResult:
        """Apply a provider's delivery report: a `sent` notification becomes `delivered`, `failed` or `bounced`.

        The notification is found by `provider` and `provider_message_id` (the reference in the provider's receipt
        when it accepted the message), else by our `notification_id` when the provider echoes it back and the
        stored provider and reference do not contradict the report. Only a `sent` notification changes: one
        conditional UPDATE and its history row in one transaction, so a repeated or concurrent report changes
        nothing more (see `ReportOutcome`). `reason` is a short code without personal data, cut to fit.
        """
        status = DeliveryStatus(status)
        if status not in REPORTED_STATUSES:
            raise ValueError(f"a delivery report cannot set {status.value!r}")
        if provider_message_id is None and notification_id is None:
            raise ValueError("a delivery report needs the provider's message id or our notification id")
        reason = fit("reason", reason)
        async with self._engine.begin() as connection:
            found = await self._reported_delivery(connection, provider, provider_message_id, notification_id)
            if found is None:
                return ProviderReportResult(ReportOutcome.UNKNOWN, None)
            updated = (
                await connection.execute(
                    sa.update(deliveries)
                    .where(
                        deliveries.c.notification_id == found.notification_id,
                        deliveries.c.status == DeliveryStatus.SENT.value,
                    )
                    .values(status=status.value, reason=reason, detail=None, updated_at=now)
                    .returning(*deliveries.c)
                )
            ).one_or_none()
            if updated is None:
                # Read again: on PostgreSQL a concurrent report may have changed the row after `found` was read.
                current = (
                    await connection.execute(
                        sa.select(deliveries).where(deliveries.c.notification_id == found.notification_id)
                    )
                ).one()
                delivery = delivery_from(current)
                if delivery.status is status:
                    return ProviderReportResult(ReportOutcome.REPEATED, delivery)
                if not delivery.status.is_final:
                    return ProviderReportResult(ReportOutcome.NOT_SENT_YET, delivery)
                return ProviderReportResult(ReportOutcome.IGNORED, delivery)
            await connection.execute(
                sa.insert(delivery_status_history).values(status_change(found.notification_id, status, reason, now))
            )
        return ProviderReportResult(ReportOutcome.APPLIED, delivery_from(updated))

    async def _reported_delivery(
        self,
        connection: AsyncConnection,
        provider: str,
        provider_message_id: str | None,
        notification_id: str | None,
    ) -> sa.Row[Any] | None:
        provider_message_id = fit("provider_message_id", provider_message_id)
        if provider_message_id is not None:
            row = (
                await connection.execute(
                    sa.select(deliveries)
                    .where(deliveries.c.provider == provider, deliveries.c.provider_message_id == provider_message_id)
                    # A provider should never reuse a reference; if one does, the newest notification is meant.
                    .order_by(deliveries.c.created_at.desc())
                    .limit(1)
                )
            ).first()
            if row is not None:
                return row
        if notification_id is None:
            return None
        row = (
            await connection.execute(sa.select(deliveries).where(deliveries.c.notification_id == notification_id))
        ).first()
        if row is None:
            return None
        # Provider and reference are None until the send is recorded (`not_sent_yet`); once set they must agree,
        # so a report about another provider's message can never touch this notification.
        if row.provider is not None and row.provider != provider:
            return None
        stored = row.provider_message_id
        if provider_message_id is not None and stored is not None and stored != provider_message_id:
            return None
        return row
