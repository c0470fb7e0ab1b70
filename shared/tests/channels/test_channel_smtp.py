"""The SMTP channel against a real SMTP server (aiosmtpd) on 127.0.0.1: delivery, reuse, failures, TLS."""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pydantic import SecretStr

from notify_shared.channels import (
    OutgoingEmail,
    PermanentDeliveryError,
    SmtpConfig,
    SmtpEmailChannel,
    TransientDeliveryError,
)

MakeEmail = Callable[..., OutgoingEmail]
OpenChannel = Callable[[SmtpConfig], SmtpEmailChannel]


@dataclass
class RecordingHandler:
    """An aiosmtpd handler that keeps what arrived and answers chosen recipients with a chosen reply."""

    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: dict[str, str] = field(default_factory=dict)
    envelopes: list[Envelope] = field(default_factory=list)
    over_tls: list[bool] = field(default_factory=list)
    quits: int = 0

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        for address in envelope.rcpt_tos:
            if address in self.data_replies:
                return self.data_replies[address]
        self.envelopes.append(envelope)
        self.over_tls.append(session.ssl is not None)
        return "250 2.0.0 Ok: queued"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.quits += 1
        return "221 Bye"


@dataclass
class RunningSmtpServer:
    port: int
    handler: RecordingHandler
    sessions: list[SMTP] = field(default_factory=list)

    @property
    def connections(self) -> int:
        return len(self.sessions)

    def drop_all_sessions(self) -> None:
        """What a server does to idle clients: close the TCP connection without a word."""
        for session in self.sessions:
            if session.transport is not None:
                session.transport.close()


class StartSmtpServer(Protocol):
    async def __call__(
        self, *, ssl_context: ssl.SSLContext | None = None, **smtp_options: Any
    ) -> RunningSmtpServer: ...


@pytest.fixture
async def start_smtp_server() -> AsyncIterator[StartSmtpServer]:
    """Starts aiosmtpd in the test's own event loop, on a free port; every connection is counted."""
    servers: list[asyncio.Server] = []

    async def start(*, ssl_context: ssl.SSLContext | None = None, **smtp_options: Any) -> RunningSmtpServer:
        handler = RecordingHandler()
        running = RunningSmtpServer(port=0, handler=handler)

        def new_session() -> SMTP:
            session = SMTP(handler, hostname="mx.example.no", **smtp_options)
            running.sessions.append(session)
            return session

        server = await asyncio.get_running_loop().create_server(new_session, "127.0.0.1", 0, ssl=ssl_context)
        servers.append(server)
        running.port = server.sockets[0].getsockname()[1]
        return running

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def open_smtp_channel() -> AsyncIterator[Callable[[SmtpConfig], SmtpEmailChannel]]:
    """Builds SMTP channels and closes them after the test (before the servers stop)."""
    channels: list[SmtpEmailChannel] = []

    def open_channel(config: SmtpConfig) -> SmtpEmailChannel:
        channel = SmtpEmailChannel(config)
        channels.append(channel)
        return channel

    yield open_channel
    for channel in channels:
        await channel.aclose()


@dataclass(frozen=True)
class SelfSignedCertificate:
    certificate: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificate, self.key)
        return context


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCertificate:
    """A certificate for 127.0.0.1, made by the openssl tool (the `cryptography` package is not installed)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a self-signed certificate for the TLS tests")
    directory = tmp_path_factory.mktemp("tls")
    made = SelfSignedCertificate(certificate=directory / "cert.pem", key=directory / "key.pem")
    subprocess.run(
        [
            openssl, "req", "-x509", "-nodes", "-days", "1",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(made.key), "-out", str(made.certificate),
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return made


def accept_login(username: str, password: str) -> Callable[..., AuthResult]:
    """An aiosmtpd authenticator that accepts exactly one login."""

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == username
        ok = ok and isinstance(auth_data, LoginPassword) and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535 itself

    return authenticate


def plain_config(port: int, **overrides: Any) -> SmtpConfig:
    return SmtpConfig(host="127.0.0.1", port=port, security="none", timeout=5.0, **overrides)


def parse(envelope: Envelope) -> EmailMessage:
    assert isinstance(envelope.content, bytes)
    return email.message_from_bytes(envelope.content, policy=email.policy.default)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_twenty_invitations_arrive_intact_over_no_more_sessions_than_the_pool_holds(
    start_smtp_server: StartSmtpServer, open_smtp_channel: OpenChannel, make_invitation: MakeEmail
) -> None:
    server = await start_smtp_server()
    channel = open_smtp_channel(plain_config(server.port, pool_size=3))
    invitations = [make_invitation(number) for number in range(1, 21)]

    receipts = await asyncio.gather(*(channel.send_email(invitation) for invitation in invitations))

    assert server.connections == 3  # every session of the pool in use at once, and no more
    arrived = {parse(envelope)["Message-ID"]: envelope for envelope in server.handler.envelopes}
    assert len(arrived) == 20
    for invitation, receipt in zip(invitations, receipts, strict=True):
        assert receipt.provider == "smtp"
        envelope = arrived[receipt.provider_message_id]
        number = invitation.notification_id[-4:]
        assert envelope.rcpt_tos == [f"forelder{int(number)}@example.no"]
        assert envelope.mail_from == "no-reply@haugen-skole.no"
        message = parse(envelope)
        assert message["Subject"] == invitation.subject
        assert message["To"] == invitation.to
        plain = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        assert plain is not None
        assert html is not None
        assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == invitation.text
        assert "<b>utviklingssamtale</b>" in html.get_content()
        calendar = next(part for part in message.walk() if part.get_content_type() == "text/calendar")
        assert calendar.get_param("method") == "REQUEST"
        assert calendar.get_content().encode() == invitation.attachments[0].data
        (ics_file,) = message.iter_attachments()
        assert ics_file.get_filename() == "invite.ics"
        assert ics_file.get_payload(decode=True) == invitation.attachments[0].data


async def test_a_greylisting_451_reply_is_a_transient_failure(
    start_smtp_server: StartSmtpServer, open_smtp_channel: OpenChannel, make_invitation: MakeEmail
) -> None:
    server = await start_smtp_server()
    server.handler.data_replies["forelder1@example.no"] = "451 4.7.1 Greylisted, please try again later"
    channel = open_smtp_channel(plain_config(server.port))

    with pytest.raises(TransientDeliveryError) as failure:
        await channel.send_email(make_invitation(1))

    assert failure.value.reason == "smtp_451"
    assert not failure.value.slow_down, "greylisting is about this message, not the server's load"
    assert server.handler.envelopes == []


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("421 4.7.0 Too many connections, slow down", "smtp_421"),
        ("432 4.3.2 Concurrent connections limit exceeded", "smtp_432"),
        ("454 Throttling failure: Maximum sending rate exceeded", "smtp_454"),
    ],
)
async def test_a_server_refusing_for_load_asks_the_whole_channel_to_slow_down(
    start_smtp_server: StartSmtpServer,
    open_smtp_channel: OpenChannel,
    make_invitation: MakeEmail,
    reply: str,
    reason: str,
) -> None:
    server = await start_smtp_server()
    server.handler.data_replies["forelder1@example.no"] = reply
    channel = open_smtp_channel(plain_config(server.port))

    with pytest.raises(TransientDeliveryError) as failure:
        await channel.send_email(make_invitation(1))

    assert (failure.value.reason, failure.value.slow_down) == (reason, True)
    assert server.handler.envelopes == []


async def test_an_unknown_mailbox_is_a_permanent_failure_and_the_session_stays_usable(
    start_smtp_server: StartSmtpServer, open_smtp_channel: OpenChannel, make_invitation: MakeEmail
) -> None:
    server = await start_smtp_server()
    server.handler.rcpt_replies["forelder1@example.no"] = "550 5.1.1 <forelder1@example.no>: mailbox unknown"
    channel = open_smtp_channel(plain_config(server.port, pool_size=1))

    with pytest.raises(PermanentDeliveryError) as failure:
        await channel.send_email(make_invitation(1))
    await channel.send_email(make_invitation(2))

    assert failure.value.reason == "smtp_rcpt_550"
    assert "forelder1" not in str(failure.value)
    assert failure.value.__cause__ is None  # the server's wording quotes the address
    assert [envelope.rcpt_tos for envelope in server.handler.envelopes] == [["forelder2@example.no"]]
    assert server.connections == 1


async def test_a_refused_connection_is_a_transient_failure(
    open_smtp_channel: OpenChannel, make_invitation: MakeEmail
) -> None:
    channel = open_smtp_channel(plain_config(unused_port()))

    with pytest.raises(TransientDeliveryError) as failure:
        await channel.send_email(make_invitation(1))

    assert failure.value.reason == "smtp_connect_error"


async def test_a_session_the_server_dropped_while_idle_is_replaced_without_failing_the_email(
    start_smtp_server: StartSmtpServer, open_smtp_channel: OpenChannel, make_invitation: MakeEmail
) -> None:
    server = await start_smtp_server()
    channel = open_smtp_channel(plain_config(server.port, pool_size=1))
    await channel.send_email(make_invitation(1))

    server.drop_all_sessions()
    await channel.send_email(make_invitation(2))

    assert len(server.handler.envelopes) == 2
    assert server.connections == 2


async def test_closing_the_channel_says_goodbye_on_every_session(
    start_smtp_server: StartSmtpServer, make_invitation: MakeEmail
) -> None:
    server = await start_smtp_server()
    channel = SmtpEmailChannel(plain_config(server.port, pool_size=2))
    await asyncio.gather(channel.send_email(make_invitation(1)), channel.send_email(make_invitation(2)))

    await channel.aclose()

    assert server.handler.quits == server.connections == 2
    await channel.aclose()  # a second close is harmless
    with pytest.raises(RuntimeError, match="closed"):
        await channel.send_email(make_invitation(3))


async def test_an_address_carrying_an_injected_header_is_refused_before_connecting(
    open_smtp_channel: OpenChannel, make_invitation: MakeEmail
) -> None:
    channel = open_smtp_channel(plain_config(unused_port()))
    forged = make_invitation(1, to="Kari <kari@example.no>\r\nBcc: evil@example.com")

    with pytest.raises(PermanentDeliveryError) as failure:
        await channel.send_email(forged)

    assert failure.value.reason == "invalid_address"


async def test_an_injected_bcc_in_the_subject_reaches_nobody_else(
    start_smtp_server: StartSmtpServer, open_smtp_channel: OpenChannel, make_invitation: MakeEmail
) -> None:
    server = await start_smtp_server()
    channel = open_smtp_channel(plain_config(server.port))

    await channel.send_email(make_invitation(1, subject="Hi\r\nBcc: evil@example.com"))

    (envelope,) = server.handler.envelopes
    assert envelope.rcpt_tos == ["forelder1@example.no"]
    assert parse(envelope)["Bcc"] is None


async def test_starttls_with_login_delivers_over_an_encrypted_session(
    start_smtp_server: StartSmtpServer,
    open_smtp_channel: OpenChannel,
    make_invitation: MakeEmail,
    certificate: SelfSignedCertificate,
) -> None:
    server = await start_smtp_server(
        tls_context=certificate.server_context(),
        require_starttls=True,
        auth_required=True,
        authenticator=accept_login("haugen-skole", "korrekt-hest-batteri"),
    )
    channel = open_smtp_channel(
        SmtpConfig(
            host="127.0.0.1",
            port=server.port,
            security="starttls",
            username="haugen-skole",
            password=SecretStr("korrekt-hest-batteri"),
            ca_file=certificate.certificate,
            timeout=5.0,
        )
    )

    await channel.send_email(make_invitation(1))

    assert server.handler.over_tls == [True]


async def test_a_rejected_login_is_a_permanent_failure(
    start_smtp_server: StartSmtpServer,
    open_smtp_channel: OpenChannel,
    make_invitation: MakeEmail,
    certificate: SelfSignedCertificate,
) -> None:
    server = await start_smtp_server(
        tls_context=certificate.server_context(),
        require_starttls=True,
        auth_required=True,
        authenticator=accept_login("haugen-skole", "korrekt-hest-batteri"),
    )
    channel = open_smtp_channel(
        SmtpConfig(
            host="127.0.0.1",
            port=server.port,
            security="starttls",
            username="haugen-skole",
            password=SecretStr("feil-passord"),
            ca_file=certificate.certificate,
            timeout=5.0,
        )
    )

    with pytest.raises(PermanentDeliveryError) as failure:
        await channel.send_email(make_invitation(1))

    assert failure.value.reason == "smtp_auth_535"


async def test_implicit_tls_delivers_and_checks_the_server_certificate(
    start_smtp_server: StartSmtpServer,
    open_smtp_channel: OpenChannel,
    make_invitation: MakeEmail,
    certificate: SelfSignedCertificate,
) -> None:
    server = await start_smtp_server(ssl_context=certificate.server_context())
    trusting = open_smtp_channel(
        SmtpConfig(host="127.0.0.1", port=server.port, security="tls", ca_file=certificate.certificate, timeout=5.0)
    )
    untrusting = open_smtp_channel(SmtpConfig(host="127.0.0.1", port=server.port, security="tls", timeout=5.0))

    await trusting.send_email(make_invitation(1))
    with pytest.raises(TransientDeliveryError) as failure:
        await untrusting.send_email(make_invitation(2))

    assert len(server.handler.envelopes) == 1
    assert failure.value.reason == "smtp_tls_certificate"
    assert isinstance(failure.value.__cause__, Exception)  # the certificate error stays for the operator


async def test_smtp_logs_name_notifications_but_never_parents(
    start_smtp_server: StartSmtpServer,
    open_smtp_channel: OpenChannel,
    make_invitation: MakeEmail,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await start_smtp_server()
    server.handler.rcpt_replies["forelder2@example.no"] = "550 5.1.1 <forelder2@example.no>: mailbox unknown"
    channel = open_smtp_channel(plain_config(server.port, pool_size=1))
    caplog.set_level("DEBUG", logger="notify_shared.channels")

    await channel.send_email(make_invitation(1))
    server.drop_all_sessions()
    await channel.send_email(make_invitation(3))
    with pytest.raises(PermanentDeliveryError):
        await channel.send_email(make_invitation(2))

    ours = [record for record in caplog.records if record.name.startswith("notify_shared.channels")]
    logged = "\n".join(record.getMessage() for record in ours)
    assert "ntf-3f1c9a7e-0001" in logged
    for personal in ("forelder", "Nordmann", "example.no", "Emma", "utviklingssamtale"):
        assert personal not in logged
