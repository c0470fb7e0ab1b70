"""Health, readiness and Prometheus metrics, served over HTTP next to each service's consumers."""

from notify_shared.observability.http import Readiness, health_routes
from notify_shared.observability.metrics import ServiceMetrics

__all__ = ["Readiness", "ServiceMetrics", "health_routes"]
