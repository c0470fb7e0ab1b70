"""SMTP over TLS as an operator configures it (SMTP_SECURITY, SMTP_USERNAME/PASSWORD, SMTP_CA_FILE), against a real
aiosmtpd server holding a certificate from a throwaway CA: implicit TLS and STARTTLS, AUTH LOGIN and PLAIN, and
what a certificate the CA does not vouch for, or a server that offers no STARTTLS, does to an email."""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import subprocess
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pydantic import ValidationError

from notify_shared.channels import FileOutbox, OutgoingEmail, SmtpEmailChannel, TransientDeliveryError
from notify_shared.channels.throttle import ThrottledEmailChannel
from notify_shared.settings import ServiceSettings
from notify_shared.wiring import build_email_channel

MakeEmail = Callable[..., OutgoingEmail]

SMTP_LOGIN = "haugen-skole"
SMTP_SECRET = "s3cret-hest-batteri-stift"


# ------------------------------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Authority:
    """A throwaway certificate authority, and where its certificate (the file SMTP_CA_FILE names) lies."""

    certificate: Path
    key: Path


@dataclass(frozen=True)
class ServerCertificate:
    certificate: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificate, self.key)
        return context


def _openssl(*arguments: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make certificates (the cryptography package is not installed)")
    subprocess.run([openssl, *arguments], check=True, capture_output=True)


def _make_authority(directory: Path, name: str) -> Authority:
    made = Authority(certificate=directory / f"{name}.pem", key=directory / f"{name}-key.pem")
    _openssl(
        "req", "-x509", "-new", "-nodes", "-days", "2",
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", str(made.key), "-out", str(made.certificate), "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return made


def _issue(authority: Authority, directory: Path, name: str, subject_alt_name: str) -> ServerCertificate:
    made = ServerCertificate(certificate=directory / f"{name}.pem", key=directory / f"{name}-key.pem")
    request = directory / f"{name}.csr"
    extensions = directory / f"{name}.ext"
    extensions.write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        f"subjectAltName={subject_alt_name}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    _openssl(
        "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", str(made.key), "-out", str(request), "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-days", "2", "-in", str(request), "-CA", str(authority.certificate),
        "-CAkey", str(authority.key), "-set_serial", "0x5eed", "-extfile", str(extensions),
        "-out", str(made.certificate),
    )  # fmt: skip
    return made


@dataclass(frozen=True)
class Certificates:
    authority: Authority
    """The CA that signed `mail_server`; the deployment trusts it through SMTP_CA_FILE."""
    mail_server: ServerCertificate
    """For 127.0.0.1, signed by `authority`."""
    impostor: ServerCertificate
    """For 127.0.0.1 too, but signed by another CA."""
    wrong_name: ServerCertificate
    """Signed by `authority`, but for another host."""


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    directory = tmp_path_factory.mktemp("smtp-tls")
    authority = _make_authority(directory, "skole-ca")
    other_authority = _make_authority(directory, "other-ca")
    return Certificates(
        authority=authority,
        mail_server=_issue(authority, directory, "mail", "IP:127.0.0.1"),
        impostor=_issue(other_authority, directory, "impostor", "IP:127.0.0.1"),
        wrong_name=_issue(authority, directory, "elsewhere", "DNS:smtp.elsewhere.example"),
    )


# ---------------------------------------------------------------------------------------------------- the server


@dataclass
class MailServer:
    """What an aiosmtpd server on 127.0.0.1 saw: accepted emails, whether each came over TLS, AUTH mechanisms."""

    port: int = 0
    envelopes: list[Envelope] = field(default_factory=list)
    over_tls: list[bool] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook
        self.envelopes.append(envelope)
        self.over_tls.append(server.transport is not None and server.transport.get_extra_info("ssl_object") is not None)
        return "250 2.0.0 Ok: queued"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
    ) -> AuthResult:
        encrypted = server.transport is not None and server.transport.get_extra_info("ssl_object") is not None
        ok = (
            encrypted
            and isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == SMTP_LOGIN
            and auth_data.password.decode() == SMTP_SECRET
        )
        if ok:
            self.logins.append(mechanism)
        return AuthResult(success=ok, handled=False)


@dataclass
class Lab:
    """Mail servers and the channels a service would build for them; everything is closed after the test."""

    certificates: Certificates
    monkeypatch: pytest.MonkeyPatch
    outbox_dir: Path
    servers: list[asyncio.Server] = field(default_factory=list)
    channels: list[SmtpEmailChannel] = field(default_factory=list)

    async def start_server(
        self, security: str, certificate: ServerCertificate | None, *, offer: tuple[str, ...] = ("LOGIN", "PLAIN")
    ) -> MailServer:
        """An SMTP server on 127.0.0.1 that wants TLS (`tls` or `starttls`) and AUTH; plain, without a certificate."""
        mail = MailServer()
        options: dict[str, Any] = {
            "hostname": "mx.haugen-skole.no",
            "auth_required": certificate is not None,
            "authenticator": mail.authenticate,
            "auth_exclude_mechanism": [name for name in ("LOGIN", "PLAIN") if name not in offer],
        }
        if security == "starttls" and certificate is not None:
            options |= {"tls_context": certificate.server_context(), "require_starttls": True}
        if security == "tls":
            # aiosmtpd only knows of STARTTLS; here the whole connection is TLS, which `authenticate` checks.
            options["auth_require_tls"] = False
        context = certificate.server_context() if security == "tls" and certificate is not None else None

        def new_session() -> SMTP:
            with warnings.catch_warnings():
                # aiosmtpd warns that AUTH without (STARTTLS) TLS is unsafe; with implicit TLS it is not plain text.
                warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
                return SMTP(mail, **options)

        server = await asyncio.get_running_loop().create_server(new_session, "127.0.0.1", 0, ssl=context)
        self.servers.append(server)
        mail.port = server.sockets[0].getsockname()[1]
        return mail

    def logged_in_channel(self, server: MailServer, security: str, ca_file: Path | None) -> SmtpEmailChannel:
        """The email channel a service builds from SMTP_HOST, _PORT, _SECURITY, _USERNAME, _PASSWORD, _CA_FILE."""
        environment = {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(server.port),
            "SMTP_SECURITY": security,
            "SMTP_USERNAME": SMTP_LOGIN,
            "SMTP_PASSWORD": SMTP_SECRET,
        }
        self.monkeypatch.delenv("SMTP_CA_FILE", raising=False)
        if ca_file is not None:
            environment["SMTP_CA_FILE"] = str(ca_file)
        for name, value in environment.items():
            self.monkeypatch.setenv(name, value)
        channel = build_email_channel(ServiceSettings(), FileOutbox(self.outbox_dir))
        assert isinstance(channel, ThrottledEmailChannel)
        smtp = channel.inner
        assert isinstance(smtp, SmtpEmailChannel), "SMTP_HOST is set, so emails must go over SMTP"
        self.channels.append(smtp)
        return smtp

    async def aclose(self) -> None:
        for channel in self.channels:  # channels first: they say QUIT to servers still running
            await channel.aclose()
        for server in self.servers:
            server.close()
            await server.wait_closed()


@pytest.fixture
async def lab(certificates: Certificates, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[Lab]:
    made = Lab(certificates, monkeypatch, tmp_path / "outbox")
    yield made
    await made.aclose()


# --------------------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize(
    ("security", "mechanism"),
    [("tls", "LOGIN"), ("tls", "PLAIN"), ("starttls", "LOGIN"), ("starttls", "PLAIN")],
)
async def test_an_email_goes_encrypted_and_logged_in_as_the_environment_says(
    lab: Lab, security: str, mechanism: str, make_invitation: MakeEmail, caplog: pytest.LogCaptureFixture
) -> None:
    server = await lab.start_server(security, lab.certificates.mail_server, offer=(mechanism,))
    channel = lab.logged_in_channel(server, security, lab.certificates.authority.certificate)

    receipt = await channel.send_email(make_invitation(1))

    assert receipt.provider == "smtp"
    assert [envelope.rcpt_tos for envelope in server.envelopes] == [["forelder1@example.no"]]
    assert server.over_tls == [True]
    assert server.logins == [mechanism]
    assert SMTP_SECRET not in caplog.text


# What OpenSSL says about each certificate the deployment must not trust.
UNTRUSTED = {"impostor": "unable to get local issuer certificate", "wrong_name": "IP address mismatch"}


@pytest.mark.parametrize("security", ["tls", "starttls"])
@pytest.mark.parametrize("certificate_name", sorted(UNTRUSTED))
async def test_a_certificate_the_ca_file_does_not_vouch_for_fails_transiently_and_is_logged_once(
    lab: Lab, security: str, certificate_name: str, make_invitation: MakeEmail, caplog: pytest.LogCaptureFixture
) -> None:
    certificate: ServerCertificate = getattr(lab.certificates, certificate_name)
    server = await lab.start_server(security, certificate)
    ca_file = lab.certificates.authority.certificate
    channel = lab.logged_in_channel(server, security, ca_file)

    failures = []
    for number in (1, 2, 3):
        with pytest.raises(TransientDeliveryError) as failure:
            await channel.send_email(make_invitation(number))
        failures.append(failure.value)

    # Transient: the address is fine and the email waits for retries until the operator fixes the configuration.
    assert [failure.reason for failure in failures] == ["smtp_tls_certificate"] * 3
    assert isinstance(failures[0].__cause__, ssl.SSLCertVerificationError | ConnectionError)
    assert server.envelopes == []
    assert server.logins == []  # the password never went to a server that could not be verified
    records = [record for record in caplog.records if record.name == "notify_shared.channels.smtp"]
    warnings_logged = [record for record in records if record.levelno >= logging.WARNING]
    assert len(warnings_logged) == 1, "one clear warning, not one per email"
    message = warnings_logged[0].getMessage()
    assert UNTRUSTED[certificate_name] in message
    assert f"127.0.0.1:{server.port}" in message
    assert str(ca_file) in message
    assert "SMTP_CA_FILE" in message
    assert SMTP_SECRET not in caplog.text


async def test_the_system_cas_do_not_trust_a_private_ca_so_smtp_ca_file_is_needed(
    lab: Lab, make_invitation: MakeEmail
) -> None:
    server = await lab.start_server("tls", lab.certificates.mail_server)
    channel = lab.logged_in_channel(server, "tls", ca_file=None)

    with pytest.raises(TransientDeliveryError) as failure:
        await channel.send_email(make_invitation(1))

    assert failure.value.reason == "smtp_tls_certificate"
    assert server.envelopes == []


async def test_a_server_that_offers_no_starttls_gets_no_email_in_plain_text(
    lab: Lab, make_invitation: MakeEmail, caplog: pytest.LogCaptureFixture
) -> None:
    server = await lab.start_server("none", None)  # as if STARTTLS were stripped on the way
    channel = lab.logged_in_channel(server, "starttls", lab.certificates.authority.certificate)

    with pytest.raises(TransientDeliveryError) as failure:
        await channel.send_email(make_invitation(1))

    assert failure.value.reason == "smtp_tls_error"
    assert server.envelopes == []
    assert server.logins == []
    assert "STARTTLS" in caplog.text


def test_an_smtp_ca_file_that_is_not_there_stops_start_up_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_CA_FILE", str(tmp_path / "no-such-ca.pem"))

    with pytest.raises(ValidationError) as error:
        ServiceSettings()

    assert [issue["loc"] for issue in error.value.errors()] == [("smtp_ca_file",)]
