"""The pipeline benchmark's delivery sinks, in a process of their own: an SMTP server and an SMS JSON webhook.

    python bench/pipeline_sinks.py --ready-file PATH     # started by bench/pipeline_bench.py, not by hand

They stand in for the parents' providers and are kept as cheap as possible, so that they measure the pipeline
rather than themselves: each accepted message is recorded as (acceptance time, key) only — the email's
Message-ID, the SMS request's Idempotency-Key — and its size; no body is kept. Both servers share one asyncio
loop on one core, so the harness can read this process's CPU time and peak RSS from /proc on its own.

- SMTP: aiosmtpd's protocol served by the loop directly (no Controller thread), answering 250 after DATA.
- SMS: a raw ASGI app under uvicorn; `POST /sms` answers 200 `{"id": ...}` as our webhook contract says.
- Control, on the same HTTP port: `GET /_stats` (counts, bytes, first and last acceptance) and `POST /_dump`
  (body: a file path) which writes every record as `channel<TAB>key<TAB>unix time` lines.

When both listen, it writes `{"pid", "smtp_port", "http_port"}` to `--ready-file`. SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Records:
    """What the sinks accepted: one (time, key) per message and channel, plus the bytes of the emails."""

    def __init__(self) -> None:
        self.smtp: list[tuple[float, str]] = []
        self.sms: list[tuple[float, str]] = []
        self.smtp_bytes = 0
        self.sms_bytes = 0

    def stats(self) -> dict[str, Any]:
        times = [records[index][0] for records in (self.smtp, self.sms) for index in (0, -1) if records]
        return {
            "smtp": len(self.smtp),
            "sms": len(self.sms),
            "smtp_bytes": self.smtp_bytes,
            "sms_bytes": self.sms_bytes,
            "first": min(times) if times else None,
            "last": max(times) if times else None,
        }

    def dump(self, path: Path) -> int:
        with path.open("w", encoding="utf-8") as out:
            for channel, records in (("email", self.smtp), ("sms", self.sms)):
                out.writelines(f"{channel}\t{key}\t{at:.6f}\n" for at, key in records)
        return len(self.smtp) + len(self.sms)


class SmtpHandler:
    """aiosmtpd's handler: accept every message, note its Message-ID (the notification id) and the time."""

    def __init__(self, records: Records, reply_delay: float) -> None:
        self._records = records
        self._reply_delay = reply_delay

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook
        content = envelope.original_content or b""
        head_end = content.find(b"\r\n\r\n")
        found = _MESSAGE_ID.search(content, 0, head_end if head_end >= 0 else len(content))
        key = found.group(1).decode("ascii", "replace").strip("<>").split("@")[0] if found else "<none>"
        if self._reply_delay:
            await asyncio.sleep(self._reply_delay)  # a provider that takes its time to accept
        self._records.smtp.append((time.time(), key))
        self._records.smtp_bytes += len(content)
        return "250 OK"


def sms_app(records: Records, reply_delay: float) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The SMS webhook and the control routes as one raw ASGI app (no framework: every microsecond here is one
    the ceiling loses)."""
    sent = 0

    async def respond(send: Send, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal sent
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        path = scope["path"]
        if scope["method"] == "POST" and path == "/sms":
            key = next((value.decode() for name, value in scope["headers"] if name == b"idempotency-key"), "<none>")
            if reply_delay:
                await asyncio.sleep(reply_delay)
            records.sms.append((time.time(), key))
            records.sms_bytes += sum(len(chunk) for chunk in chunks)
            sent += 1
            await respond(send, 200, b'{"id":"sms-%d"}' % sent)
        elif scope["method"] == "GET" and path == "/_stats":
            await respond(send, 200, json.dumps(records.stats()).encode())
        elif scope["method"] == "POST" and path == "/_dump":
            written = records.dump(Path(b"".join(chunks).decode()))
            await respond(send, 200, json.dumps({"written": written}).encode())
        else:
            await respond(send, 404, b"{}")

    return app


def _listening_socket() -> socket.socket:
    # Bound here, so the port is known before uvicorn starts and no other process can take it in between.
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it
    # every keep-alive response waits ~40 ms for the client's delayed ACK (headers and body are two writes).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def serve(ready_file: Path, reply_delay: float) -> None:
    records = Records()
    loop = asyncio.get_running_loop()
    handler = SmtpHandler(records, reply_delay)
    # A fixed hostname: without one aiosmtpd calls socket.getfqdn() for every connection.
    smtp_server = await loop.create_server(
        lambda: SMTP(handler, hostname="bench-sink.invalid", ident="bench-sink"), host="127.0.0.1", port=0
    )
    smtp_port = smtp_server.sockets[0].getsockname()[1]
    http_socket = _listening_socket()
    http_port = http_socket.getsockname()[1]
    config = uvicorn.Config(
        sms_app(records, reply_delay),
        http="h11",
        lifespan="off",
        access_log=False,
        log_level="warning",
        backlog=1024,
        timeout_keep_alive=60,
    )
    server = uvicorn.Server(config)

    async def announce() -> None:
        # uvicorn has no event for "listening", only this flag.
        while not server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        ports = {"pid": os.getpid(), "smtp_port": smtp_port, "http_port": http_port}
        # Written aside and renamed, so the parent never reads a half-written file.
        partial = ready_file.with_suffix(".partial")
        await asyncio.to_thread(partial.write_text, json.dumps(ports))
        partial.replace(ready_file)

    announcing = asyncio.create_task(announce())
    try:
        await server.serve(sockets=[http_socket])  # returns on SIGTERM / SIGINT
    finally:
        announcing.cancel()
        smtp_server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ready-file", type=Path, required=True, help="where to write the ports once listening")
    parser.add_argument(
        "--reply-delay", type=float, default=0.0, help="seconds each sink waits before accepting a message (0)"
    )
    args = parser.parse_args()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every session at INFO
    asyncio.run(serve(args.ready_file, args.reply_delay))


if __name__ == "__main__":
    main()
