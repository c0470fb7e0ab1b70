"""Delivery reports: providers tell us an SMS was delivered or failed, or an email bounced.

`routes` authenticates and reads them over HTTP (`signatures`, `formats`); `receiver` applies each to the ledger
(`DeliveryLedger.apply_provider_report`) and publishes the new status. See docs/operations.md, "Delivery reports".
"""

from notify_shared.delivery_reports.formats import InvalidReportError, ProviderReport
from notify_shared.delivery_reports.receiver import DeliveryReportReceiver
from notify_shared.delivery_reports.routes import delivery_report_routes, route_secrets
from notify_shared.delivery_reports.signatures import notify_signature, notify_signature_headers, twilio_signature

__all__ = [
    "DeliveryReportReceiver",
    "InvalidReportError",
    "ProviderReport",
    "delivery_report_routes",
    "notify_signature",
    "notify_signature_headers",
    "route_secrets",
    "twilio_signature",
]
