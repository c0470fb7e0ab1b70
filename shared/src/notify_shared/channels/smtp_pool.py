"""A small pool of open SMTP sessions, so a burst of emails does not pay a TCP + TLS + AUTH handshake each."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiosmtplib

logger = logging.getLogger(__name__)

Connect = Callable[[], Awaitable[aiosmtplib.SMTP]]


@dataclass(frozen=True)
class Lease:
    """A session lent to one transaction.

    `verified` is False when the session was reused without a round trip since it last worked; a disconnect on
    such a session most likely means the server dropped it while idle, not that this message failed.
    """

    client: aiosmtplib.SMTP
    verified: bool


class _Slot:
    def __init__(self) -> None:
        self.client: aiosmtplib.SMTP | None = None
        self.last_used = 0.0

    def drop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


class SmtpConnectionPool:
    """At most `size` sessions, opened lazily and handed out one transaction at a time.

    Slots are taken last-in-first-out, so under light load one warm session does the work and the others are
    never opened.
    """

    def __init__(
        self,
        connect: Connect,
        size: int,
        *,
        probe_after_idle: float = 15.0,
        quit_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self._size = size
        self._probe_after_idle = probe_after_idle
        self._quit_timeout = quit_timeout
        self._clock = clock
        self._slots: asyncio.LifoQueue[_Slot] = asyncio.LifoQueue()
        for _ in range(size):
            self._slots.put_nowait(_Slot())
        self._closed = False

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[Lease]:
        """A connected session for one mail transaction; waits while all `size` sessions are busy."""
        if self._closed:
            raise RuntimeError("the SMTP channel is closed")
        slot = await self._slots.get()
        try:
            verified = await self._ready(slot)
            assert slot.client is not None
            yield Lease(slot.client, verified)
        except BaseException as error:
            if not _session_still_in_step(slot.client, error):
                slot.drop()
            raise
        finally:
            slot.last_used = self._clock()
            self._slots.put_nowait(slot)

    async def _ready(self, slot: _Slot) -> bool:
        client = slot.client
        if client is not None and client.is_connected:
            if self._clock() - slot.last_used < self._probe_after_idle:
                return False
            # Servers close idle sessions after a while, sometimes without a FIN reaching us; one NOOP tells.
            try:
                await client.noop()
            except (aiosmtplib.SMTPException, OSError):
                logger.debug("idle SMTP session failed its NOOP; reconnecting")
            else:
                return True
        slot.drop()
        slot.client = await self._connect()
        logger.debug("opened an SMTP session")
        return True

    async def aclose(self) -> None:
        """Wait for transactions in flight, then QUIT every session. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        for _ in range(self._size):
            slot = await self._slots.get()
            if slot.client is not None and slot.client.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                    await slot.client.quit(timeout=self._quit_timeout)
            slot.drop()


def _session_still_in_step(client: aiosmtplib.SMTP | None, error: BaseException) -> bool:
    # After a reply code, server and client agree where the session stands (aiosmtplib has sent RSET), so it
    # can be reused. After a timeout, disconnect or cancellation nobody knows; 421 says the server is leaving.
    if client is None or not client.is_connected:
        return False
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return True
    return isinstance(error, aiosmtplib.SMTPResponseException) and error.code != 421
