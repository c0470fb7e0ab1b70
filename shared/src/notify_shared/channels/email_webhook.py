"""Email through an HTTP API that takes the whole message and an idempotency key.

SMTP cannot tell a resent message from a new one, so an email accepted in the instant before a crash is sent again
after the restart. An API that honours `Idempotency-Key` (as most transactional email APIs do, or an in-house relay
in front of the mail server) drops that resend, which makes email exactly once under crashes, like SMS.
"""

from __future__ import annotations

import base64
import logging

import httpx
from pydantic import SecretStr

from notify_shared.channels.base import DeliveryReceipt, EmailChannel, OutgoingEmail, PermanentDeliveryError
from notify_shared.channels.mime import compose_message, parse_single_address
from notify_shared.channels.provider_http import (
    DEFAULT_MAX_CONNECTIONS,
    ProviderHttpClient,
    error_for_status,
    json_object,
)

logger = logging.getLogger(__name__)


class WebhookEmailChannel(EmailChannel):
    """POSTs `{"from", "to", "reference", "message_id", "raw"}` as JSON to `url`.

    `raw` is the complete message, exactly as it would go over SMTP (headers, text, HTML, calendar file), in
    base64; `from` and `to` are the envelope's bare addresses. Every request carries
    `Idempotency-Key: <notification_id>`, the same for every attempt at one notification, so the provider sends a
    repeated request once. `Authorization: Bearer <auth_token>` is sent when a token is set. Any 2xx is success;
    a JSON body `{"id": ...}` becomes the receipt's provider message id, else the Message-ID is. 408, 429 and 5xx
    are transient, other statuses permanent (`provider_http.error_for_status`).
    """

    name = "email-webhook"

    def __init__(
        self,
        url: str,
        auth_token: SecretStr | None = None,
        timeout: float = 30.0,
        *,
        envelope_sender: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self._url = url
        self._envelope_sender = parse_single_address(envelope_sender).addr_spec if envelope_sender else None
        headers = {"Authorization": f"Bearer {auth_token.get_secret_value()}"} if auth_token else None
        self._http = ProviderHttpClient(
            timeout=timeout, headers=headers, transport=transport, max_connections=max_connections
        )

    async def send_email(self, message: OutgoingEmail) -> DeliveryReceipt:
        """Send one email; raises `TransientDeliveryError` or `PermanentDeliveryError` on failure."""
        try:
            composed = compose_message(message)
        except ValueError:
            raise PermanentDeliveryError("invalid_address") from None
        payload = {
            "from": self._envelope_sender or composed.sender.addr_spec,
            "to": composed.recipient.addr_spec,
            "reference": message.notification_id,
            "message_id": composed.message_id,
            "raw": base64.b64encode(composed.data).decode("ascii"),
        }
        response = await self._http.post(self._url, json=payload, headers={"Idempotency-Key": message.notification_id})
        error = error_for_status(response)
        if error is not None:
            raise error
        provider_id = json_object(response).get("id")
        logger.debug("notification %s accepted by the email API (%d)", message.notification_id, response.status_code)
        return DeliveryReceipt(
            provider=self.name,
            provider_message_id=str(provider_id) if isinstance(provider_id, str | int) else composed.message_id,
        )

    async def aclose(self) -> None:
        await self._http.aclose()
