"""Where status events go: `notification.status` on Kafka in the services, a list in unit tests."""

from __future__ import annotations

from typing import Protocol

from notify_shared.contract import NotificationStatusReport


class StatusSink(Protocol):
    """Publishes one status report; ids only, no contact details."""

    async def publish_status(self, report: NotificationStatusReport) -> None: ...


class CollectingStatusSink:
    """Keeps reports in memory; for unit tests and dry runs."""

    def __init__(self) -> None:
        self.reports: list[NotificationStatusReport] = []

    async def publish_status(self, report: NotificationStatusReport) -> None:
        self.reports.append(report)
