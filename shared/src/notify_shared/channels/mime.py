"""Building the MIME message for an `OutgoingEmail`; used by the SMTP channel and the file outbox alike."""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.headerregistry import Address, AddressHeader, ContentTypeHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import encode_rfc2231, format_datetime
from functools import lru_cache
from typing import cast

from notify_shared.channels.base import Attachment, OutgoingEmail
from notify_shared.channels.tokens import safe_token

# The SMTP policy writes CRLF line ends and RFC 2047-encoded headers, which every server accepts; UTF-8 lives
# in the parts' charset. (aiosmtplib switches to raw UTF-8 headers only when an address needs SMTPUTF8.)
POLICY = email.policy.SMTP
_LINE_LENGTH = 78  # POLICY.max_line_length: RFC 5322's "SHOULD" for header lines

_HEADERS = HeaderRegistry()
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_FALLBACK_DOMAIN = "notify.invalid"
# Callers may add headers, but not redirect the message or break its structure.
_RESERVED_HEADERS = frozenset({"from", "to", "cc", "bcc", "sender", "mime-version"})


@dataclass(frozen=True)
class ComposedEmail:
    """An email as it goes over the wire, with the addresses it goes between."""

    data: bytes
    """The whole message: 7-bit, CRLF line ends, lines within RFC 5322's 78 characters where it can."""
    message_id: str
    sender: Address
    recipient: Address


def compose_message(outgoing: OutgoingEmail, *, now: datetime | None = None) -> ComposedEmail:
    """The email as bytes, ready for SMTP or an `.eml` file.

    Raises `ValueError` when `to`, `sender` or `reply_to` is not exactly one valid address, or when `headers`
    names a reserved or malformed header.

    Every header value passes through `one_line`, so no input can start a header of its own. The Message-ID is
    derived from `notification_id`, so a resend of the same notification is recognisably the same message.

    Written directly rather than through `email.message.EmailMessage`, whose header registry and content manager
    made building an invitation cost 4.6 ms of CPU, more than rendering it: a fifth of the invitations
    service's time. Bodies are quoted-printable and attachments base64 (binascii, in C); the boundaries start
    with `=_`, which neither encoding can produce, so no content can end a part early.
    """
    sender = parse_sender_address(outgoing.sender)
    recipient = parse_single_address(outgoing.to)
    headers: dict[str, tuple[str, str]] = {}

    def put(name: str, encoded_value: str) -> None:
        headers[name.lower()] = (name, encoded_value)

    put("From", _address_header("From", sender))
    put("To", _address_header("To", recipient))
    if outgoing.reply_to:
        put("Reply-To", _address_header("Reply-To", parse_single_address(outgoing.reply_to)))
    put("Subject", _text_header("Subject", one_line(outgoing.subject)))
    put("Date", format_datetime(now or datetime.now(UTC)))
    put("Message-ID", message_id(outgoing.notification_id, sender))
    # RFC 3834: tells vacation responders and mailing lists not to answer a machine.
    put("Auto-Submitted", "auto-generated")
    # Exchange does not honour Auto-Submitted for out-of-office replies; this header is its equivalent.
    put("X-Auto-Response-Suppress", "OOF, AutoReply")
    for name, value in outgoing.headers.items():
        _check_header_name(name)
        headers.pop(name.lower(), None)
        put(name, _text_header(name, one_line(value)))
    put("MIME-Version", "1.0")
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.values()).encode("ascii")
    identifier = headers["message-id"][1]
    return ComposedEmail(data=head + _body(outgoing), message_id=identifier, sender=sender, recipient=recipient)


def build_message(outgoing: OutgoingEmail, *, now: datetime | None = None) -> EmailMessage:
    """`compose_message`'s email parsed back into a message object, for code and tests that inspect it."""
    composed = compose_message(outgoing, now=now)
    return email.message_from_bytes(composed.data, policy=POLICY)


def _address_header(name: str, address: Address) -> str:
    # Addresses are ASCII here (parse_single_address refuses others and writes domains in IDNA). A display name
    # is left to the email policy's folder, which quotes and encodes it word by word so that it reads back
    # exactly; it is slow, so its result is remembered: the few sender names recur, recipients come bare.
    if not address.display_name:
        return address.addr_spec
    return _folded_address(name, str(address))


@lru_cache(maxsize=256)
def _folded_address(name: str, value: str) -> str:
    folded: str = _HEADERS(name, value).fold(policy=POLICY)
    return folded.removeprefix(f"{name}: ").removesuffix("\r\n")


@lru_cache(maxsize=256)
def _text_header(name: str, value: str) -> str:
    # Remembered: the guardians of one meeting get the same subject, and encoding it is the costly part.
    # A short ASCII value goes in as it is. Anything else is written as RFC 2047 encoded words, folded between
    # words; every character inside an encoded word reads back exactly, spaces next to one included.
    if value.isascii() and len(name) + 2 + len(value) <= _LINE_LENGTH:
        return value
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


def _body(outgoing: OutgoingEmail) -> bytes:
    # The structure that Google Calendar itself sends, and that Gmail, Outlook and Apple Mail all understand:
    #
    #   multipart/mixed
    #   ├── multipart/alternative
    #   │   ├── text/plain
    #   │   ├── text/html
    #   │   └── text/calendar; method=REQUEST    ← Outlook and Gmail turn this into an invitation with buttons
    #   └── text/calendar; method=REQUEST  invite.ics, as an attachment
    #                                             ← the same file to open or save (Apple Mail, webmail, phones)
    #
    # The copy is text/calendar, the type registered for iCalendar (Google sends the unregistered
    # application/ics). It carries the method too: RFC 5545 wants the `method` parameter wherever the object has a
    # METHOD, and must equal it. Outlook does not act twice: it takes a text/calendar part marked as an attachment
    # for a file, not for a second meeting message. Without HTML, calendar or attachments the parts collapse: a
    # plain-text email is just its text part.
    alternatives = [_text_part("plain", outgoing.text)]
    if outgoing.html:
        alternatives.append(_text_part("html", outgoing.html))
    calendar = _first_calendar(outgoing.attachments)
    calendar_type = ""
    if calendar is not None:
        content_type, attachment = calendar
        method = _parameter(str(content_type.params["method"]).upper())
        calendar_type = f'text/calendar; method="{method}"; charset="UTF-8"'
        alternatives.append(_base64_part(calendar_type, attachment.data))
    body = alternatives[0] if len(alternatives) == 1 else _multipart("alternative", alternatives)
    if not outgoing.attachments:
        return body
    files = []
    for attachment in outgoing.attachments:
        if calendar is not None and attachment is calendar[1]:
            content_type_value = calendar_type
        else:
            content_type_value = _content_type(attachment).content_type
        files.append(_base64_part(content_type_value, attachment.data, disposition=_attachment_disposition(attachment)))
    return _multipart("mixed", [body, *files])


def _text_part(subtype: str, text: str) -> bytes:
    # Quoted-printable keeps every part 7-bit clean, so no server without 8BITMIME can mangle æøå or Arabic.
    normalised = b"\r\n".join(text.encode("utf-8").splitlines()) + b"\r\n"
    encoded = binascii.b2a_qp(normalised, istext=True)
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'.encode(
            "ascii"
        )
        + encoded
    )


def _base64_part(content_type: str, data: bytes, *, disposition: str | None = None) -> bytes:
    head = f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: base64\r\n"
    if disposition is not None:
        head += f"Content-Disposition: {disposition}\r\n"
    return (head + "\r\n").encode("ascii") + base64.encodebytes(data).replace(b"\n", b"\r\n")


def _multipart(subtype: str, parts: list[bytes]) -> bytes:
    boundary = f"=_notify_{secrets.token_hex(12)}"
    delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
    return (
        f'Content-Type: multipart/{subtype};\r\n boundary="{boundary}"\r\n\r\n'.encode("ascii")
        + delimiter.join([b"", *parts]).removeprefix(b"\r\n")
        + f"\r\n--{boundary}--\r\n".encode("ascii")
    )


def _attachment_disposition(attachment: Attachment) -> str:
    filename = one_line(attachment.filename)
    if filename.isascii() and filename.isprintable() and not any(char in filename for char in '"\\'):
        return f'attachment;\r\n filename="{filename}"'
    # RFC 2231: any other name is percent-encoded UTF-8, which every mail client reads back exactly.
    return f"attachment;\r\n filename*={encode_rfc2231(filename, 'utf-8')}"


def _parameter(value: str) -> str:
    # A MIME parameter value inside quotes: only a token is let through (METHOD is REQUEST, CANCEL, ...).
    if not value or not all(char.isascii() and (char.isalnum() or char in "-_.") for char in value):
        raise ValueError(f"unusable calendar method {value!r}")
    return value


def _first_calendar(attachments: Iterable[Attachment]) -> tuple[ContentTypeHeader, Attachment] | None:
    # Only an iTIP object (one with METHOD) is an invitation; one is all a mail client will act on.
    for attachment in attachments:
        content_type = _content_type(attachment)
        if content_type.content_type == "text/calendar" and "method" in content_type.params:
            return content_type, attachment
    return None


def _content_type(attachment: Attachment) -> ContentTypeHeader:
    return _parsed_content_type(one_line(attachment.content_type))


@lru_cache(maxsize=64)
def _parsed_content_type(value: str) -> ContentTypeHeader:
    # The registry's parser is slow and the same few content types come by again and again. The header object
    # it builds is immutable. The registry builds a ContentTypeHeader for this name; typeshed cannot express it.
    return cast(ContentTypeHeader, _HEADERS("Content-Type", value))


def one_line(value: str) -> str:
    """`value` with every line break (CR, LF and the Unicode separators) turned into a space."""
    return " ".join(part.strip() for part in value.splitlines()).strip()


def parse_single_address(value: str) -> Address:
    """The one mailbox in `value` (`kari@example.no`, `Kari Nordmann <kari@example.no>`), or ValueError.

    An internationalised domain comes back in its IDNA form (`kari@xn--bjlsen-cya.no` for `kari@bjølsen.no`):
    the SMTP policy would otherwise write it as an RFC 2047 encoded word, which is not allowed inside an
    address (`kari@=?utf-8?q?bj=C3=B8lsen?=.no` reaches nobody), and the SMTP envelope would need SMTPUTF8.
    """
    plain = _PLAIN_ADDRESS.fullmatch(value)
    if plain is not None:
        # The common case, a bare ASCII address: what the registry's parser would make of it, without it.
        return Address(username=plain["local"], domain=plain["domain"])
    header = _HEADERS("To", one_line(value))
    addresses = cast(AddressHeader, header).addresses  # the registry's class for "To"; typeshed cannot tell
    if header.defects or len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        raise ValueError("not exactly one valid email address")
    address = addresses[0]
    if address.domain.isascii():
        return address
    try:
        domain = address.domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("not exactly one valid email address") from None
    return Address(display_name=address.display_name, username=address.username, domain=domain)


@lru_cache(maxsize=64)
def parse_sender_address(value: str) -> Address:
    """`parse_single_address` for the few sender addresses a deployment uses, remembered (Address is immutable)."""
    return parse_single_address(value)


def message_id(notification_id: str, sender: Address) -> str:
    """`<notification-token@sender-domain>`: stable per notification, unique across senders."""
    return f"<{safe_token(notification_id)}@{sender.domain or _FALLBACK_DOMAIN}>"


def _check_header_name(name: str) -> None:
    # RFC 5322 field names are printable ASCII without colon or space.
    printable = all(33 <= ord(char) <= 126 and char != ":" for char in name)
    lowered = name.lower()
    if not name or not printable or lowered in _RESERVED_HEADERS or lowered.startswith("content-"):
        raise ValueError(f"header {name!r} may not be set by the caller")
