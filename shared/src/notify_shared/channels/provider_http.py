"""What the HTTP channels (SMS and email APIs) share: a pooled httpx client and HTTP outcomes mapped to errors."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from notify_shared.channels.base import DeliveryError, PermanentDeliveryError, TransientDeliveryError

DEFAULT_MAX_CONNECTIONS = 32
"""Connections to one provider at most, unless a channel is given its own limit (see docs/operations.md)."""


class ProviderHttpClient:
    """An httpx.AsyncClient whose network failures arrive as `TransientDeliveryError`.

    `transport` replaces the network, e.g. with `httpx.MockTransport` in tests.
    """

    def __init__(
        self,
        *,
        timeout: float,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        # A burst of messages opens connections that the next burst can reuse, skipping TCP and TLS set-up.
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=30.0
        )
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=limits,
            auth=auth,
            headers={"Accept": "application/json", **(headers or {})},
            transport=transport,
        )

    async def post(
        self,
        url: str,
        *,
        json: object | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST and return the response whatever its status; raises only when no response came back."""
        # A timeout may hide a message that was sent after all; providers without an idempotency key can then
        # deliver it twice when it is retried. That is the lesser evil next to a parent never hearing.
        try:
            return await self._client.post(url, json=json, data=data, headers=headers)
        except httpx.ConnectTimeout as error:
            raise TransientDeliveryError(CONNECT_FAILED) from error
        except httpx.TimeoutException as error:
            raise TransientDeliveryError("http_timeout") from error
        except httpx.ConnectError as error:
            raise TransientDeliveryError(CONNECT_FAILED) from error
        except httpx.TransportError as error:
            raise TransientDeliveryError("http_transport_error") from error

    async def aclose(self) -> None:
        await self._client.aclose()


CONNECT_FAILED = "http_connect_failed"
"""No connection was made, so the provider certainly did not get the message."""


def error_for_status(response: httpx.Response, reason: str | None = None) -> DeliveryError | None:
    """None for 2xx; otherwise the error to raise, `reason` defaulting to `http_<status>`.

    429, 408 and 5xx are transient (with the Retry-After the provider asked for); every other status means the
    request itself is wrong and is permanent. A 429, or a 503 that says when to come back, asks the whole channel
    to slow down (`TransientDeliveryError.slow_down`).
    """
    status = response.status_code
    if 200 <= status < 300:
        return None
    reason = reason or f"http_{status}"
    if status in (408, 429) or status >= 500:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        return TransientDeliveryError(
            reason,
            retry_after=retry_after,
            http_status=status,
            slow_down=status == 429 or (status == 503 and retry_after is not None),
        )
    return PermanentDeliveryError(reason)


def retry_after_seconds(value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """Seconds from a Retry-After header, which is either a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now()).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The response body as a JSON object, or `{}` when it is empty or not an object."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}
