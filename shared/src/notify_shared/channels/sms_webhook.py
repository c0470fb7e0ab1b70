"""SMS through a generic JSON webhook, for gateways that are not Twilio (or an in-house relay)."""

from __future__ import annotations

import logging

import httpx
from pydantic import SecretStr

from notify_shared.channels.base import DeliveryReceipt, OutgoingSms, SmsChannel
from notify_shared.channels.provider_http import (
    DEFAULT_MAX_CONNECTIONS,
    ProviderHttpClient,
    error_for_status,
    json_object,
)

logger = logging.getLogger(__name__)


class WebhookSmsChannel(SmsChannel):
    """POSTs `{"to", "from", "text", "reference"}` as JSON to `url`.

    Sends `Authorization: Bearer <auth_token>` when a token is set, and `Idempotency-Key: <notification_id>`
    so the gateway can drop a retry of an SMS it already took. Any 2xx is success; a JSON body `{"id": ...}`
    becomes the receipt's provider message id. With `status_callback_url`, the JSON also has
    `"status_callback_url"`: where the gateway should POST its delivery report (`notify_shared.delivery_reports`).
    """

    name = "webhook"

    def __init__(
        self,
        url: str,
        auth_token: SecretStr | None = None,
        timeout: float = 10.0,
        *,
        status_callback_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self._url = url
        self._status_callback_url = status_callback_url
        headers = {"Authorization": f"Bearer {auth_token.get_secret_value()}"} if auth_token else None
        self._http = ProviderHttpClient(
            timeout=timeout, headers=headers, transport=transport, max_connections=max_connections
        )

    async def send_sms(self, message: OutgoingSms) -> DeliveryReceipt:
        """Send one SMS; raises `TransientDeliveryError` or `PermanentDeliveryError` on failure."""
        payload = {
            "to": message.to_e164,
            "from": message.sender_id,
            "text": message.text,
            "reference": message.notification_id,
        }
        if self._status_callback_url:
            payload["status_callback_url"] = self._status_callback_url
        response = await self._http.post(self._url, json=payload, headers={"Idempotency-Key": message.notification_id})
        error = error_for_status(response)
        if error is not None:
            raise error
        provider_id = json_object(response).get("id")
        logger.debug("notification %s accepted by the SMS webhook (%d)", message.notification_id, response.status_code)
        return DeliveryReceipt(
            provider=self.name,
            provider_message_id=str(provider_id) if isinstance(provider_id, str | int) else None,
        )

    async def aclose(self) -> None:
        await self._http.aclose()
