"""Real local endpoints the channels deliver to in tests: an SMTP server and an SMS HTTP endpoint."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class ReceivedEmail:
    envelope_to: list[str]
    message: EmailMessage


@dataclass
class SmtpSink:
    """An aiosmtpd server on loopback that keeps every message it accepts."""

    host: str = "127.0.0.1"
    port: int = 0
    received: list[ReceivedEmail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.received.append(ReceivedEmail(list(envelope.rcpt_tos), message))
        return "250 OK"

    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [item.message for item in self.received]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink(port=_free_port())
    # aiosmtpd checks readiness by connecting to the port it was given, so it needs a real one, not 0.
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@dataclass
class SmsSink:
    """A JSON webhook endpoint that keeps every SMS it accepts."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def messages(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received)


class _BurstTolerantHttpServer(ThreadingHTTPServer):
    # The standard listen backlog of 5 refuses connections when a service opens its pool all at once.
    request_queue_size = 256


@contextmanager
def sms_sink() -> Iterator[SmsSink]:
    sink = SmsSink()

    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as real SMS gateways do: a new TCP connection per message made the sink, not the
        # service, what a burst of SMS waited for in the benchmarks.
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length))
            with sink.lock:
                sink.received.append(payload)
                number = len(sink.received)
            body = json.dumps({"id": f"sms-{number}"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = _BurstTolerantHttpServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sink.url = f"http://127.0.0.1:{server.server_address[1]}/sms"
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
