"""SMS through Twilio's Programmable Messaging REST API (the 2010-04-01 Messages resource)."""

from __future__ import annotations

import logging
from urllib.parse import quote

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


class TwilioSmsChannel(SmsChannel):
    """Creates one Twilio Message per SMS: form-encoded `To`, `From`, `Body`; HTTP basic auth as the account.

    `From` is the school's alphanumeric sender id, which Twilio accepts in Norway and most of Europe. Error
    reasons carry Twilio's own error code when it gives one (`twilio_21211` is an invalid `To` number). With
    `status_callback_url`, Twilio is asked (`StatusCallback`) to POST the message's status changes there.
    """

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: SecretStr,
        *,
        base_url: str = "https://api.twilio.com",
        timeout: float = 10.0,
        status_callback_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self._status_callback_url = status_callback_url
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{quote(account_sid, safe='')}/Messages.json"
        self._http = ProviderHttpClient(
            timeout=timeout,
            auth=httpx.BasicAuth(account_sid, auth_token.get_secret_value()),
            transport=transport,
            max_connections=max_connections,
        )

    async def send_sms(self, message: OutgoingSms) -> DeliveryReceipt:
        """Send one SMS; the receipt's `provider_message_id` is the Message SID (`SM…`)."""
        form = {"To": message.to_e164, "From": message.sender_id, "Body": message.text}
        if self._status_callback_url:
            form["StatusCallback"] = self._status_callback_url
        response = await self._http.post(self._url, data=form)
        body = json_object(response)
        code = body.get("code")
        error = error_for_status(response, f"twilio_{code}" if isinstance(code, int) else None)
        if error is not None:
            raise error
        sid = body.get("sid")
        logger.debug("notification %s accepted by Twilio (%d)", message.notification_id, response.status_code)
        return DeliveryReceipt(provider=self.name, provider_message_id=sid if isinstance(sid, str) else None)

    async def aclose(self) -> None:
        await self._http.aclose()
