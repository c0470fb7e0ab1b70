"""The file outbox: where emails and SMS go when no SMTP server or SMS provider is configured.

A newcomer running the services locally can open the `.eml` files in a mail client and read `sms.jsonl` to see
exactly what parents would have received.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from notify_shared.channels.base import (
    DeliveryReceipt,
    EmailChannel,
    OutgoingEmail,
    OutgoingSms,
    PermanentDeliveryError,
    SmsChannel,
)
from notify_shared.channels.mime import compose_message
from notify_shared.channels.tokens import safe_token


class FileOutbox(EmailChannel, SmsChannel):
    """Writes each email to `<directory>/email/<notification_id>.eml` and appends each SMS to `sms.jsonl`.

    An email file is written to a temporary name and renamed into place, so a reader never sees half a message
    and a resend of the same notification replaces its file. Each SMS is one JSON line written with one
    `O_APPEND` write, so lines from several services sharing the directory do not interleave.
    """

    name = "outbox"

    def __init__(self, directory: Path, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.directory = directory
        self._clock = clock
        self._sms_lock = asyncio.Lock()

    @property
    def email_directory(self) -> Path:
        return self.directory / "email"

    @property
    def sms_file(self) -> Path:
        return self.directory / "sms.jsonl"

    async def send_email(self, message: OutgoingEmail) -> DeliveryReceipt:
        """Write the email; the receipt's `provider_message_id` is the file's path relative to the outbox."""
        try:
            data = compose_message(message, now=self._clock()).data
        except ValueError:
            raise PermanentDeliveryError("invalid_address") from None
        path = self.email_directory / f"{safe_token(message.notification_id)}.eml"
        await asyncio.to_thread(_write_atomically, path, data)
        return DeliveryReceipt(provider=self.name, provider_message_id=path.relative_to(self.directory).as_posix())

    async def send_sms(self, message: OutgoingSms) -> DeliveryReceipt:
        """Append the SMS as one JSON line: `to`, `from`, `text`, `notification_id`, `written_at`."""
        record = {
            "to": message.to_e164,
            "from": message.sender_id,
            "text": message.text,
            "notification_id": message.notification_id,
            "written_at": self._clock().isoformat(),
        }
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        # The lock keeps this process's lines in order; O_APPEND keeps other processes' lines whole.
        async with self._sms_lock:
            await asyncio.to_thread(_append, self.sms_file, line)
        return DeliveryReceipt(provider=self.name, provider_message_id=None)

    async def aclose(self) -> None:
        """Nothing to release; every write is complete when its send returns."""


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _append(path: Path, line: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(descriptor, line)
    finally:
        os.close(descriptor)
