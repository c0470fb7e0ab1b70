"""Building the MIME message for an `OutgoingEmail`; used by the SMTP channel and the file outbox alike."""

from __future__ import annotations

import email.policy
from collections.abc import Iterable
from datetime import UTC, datetime
from email.header import Header
from email.headerregistry import Address, AddressHeader, ContentTypeHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime
from typing import cast

from notify_shared.channels.base import Attachment, OutgoingEmail
from notify_shared.channels.tokens import safe_token

# The SMTP policy writes CRLF line ends and RFC 2047-encoded headers, which every server accepts; UTF-8 lives
# in the parts' charset. (aiosmtplib switches to raw UTF-8 headers only when an address needs SMTPUTF8.)
POLICY = email.policy.SMTP
_LINE_LENGTH = 78  # POLICY.max_line_length: RFC 5322's "SHOULD" for header lines

_HEADERS = HeaderRegistry()
_FALLBACK_DOMAIN = "notify.invalid"
# Callers may add headers, but not redirect the message or break its structure.
_RESERVED_HEADERS = frozenset({"from", "to", "cc", "bcc", "sender", "mime-version"})


def build_message(outgoing: OutgoingEmail, *, now: datetime | None = None) -> EmailMessage:
    """The email as a MIME message, ready for SMTP or an `.eml` file.

    Raises `ValueError` when `to`, `sender` or `reply_to` is not exactly one valid address, or when `headers`
    names a reserved or malformed header.

    Every header value passes through `one_line`, so no input can start a header of its own. The Message-ID is
    derived from `notification_id`, so a resend of the same notification is recognisably the same message.
    """
    sender = parse_single_address(outgoing.sender)
    recipient = parse_single_address(outgoing.to)
    message = EmailMessage(policy=POLICY)
    message["From"] = str(sender)
    message["To"] = str(recipient)
    if outgoing.reply_to:
        message["Reply-To"] = str(parse_single_address(outgoing.reply_to))
    _set_text_header(message, "Subject", one_line(outgoing.subject))
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = message_id(outgoing.notification_id, sender)
    # RFC 3834: tells vacation responders and mailing lists not to answer a machine.
    message["Auto-Submitted"] = "auto-generated"
    # Exchange does not honour Auto-Submitted for out-of-office replies; this header is its equivalent.
    message["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    for name, value in outgoing.headers.items():
        _check_header_name(name)
        del message[name]
        message[name] = one_line(value)
    _add_body(message, outgoing)
    return message


def _set_text_header(message: EmailMessage, name: str, value: str) -> None:
    # A short ASCII value goes in as it is. Anything else is written as RFC 2047 encoded words here, because
    # the policy's own folder, mixing plain and encoded words, moves or drops the spaces next to an encoded word
    # ("{% endfor %}Ã êS" came back as "{% endfor  %}ÃêS"). Every character inside an encoded word, folded
    # between words, reads back exactly. set_raw keeps the policy from folding it again (its lines fit).
    if value.isascii() and len(name) + 2 + len(value) <= _LINE_LENGTH:
        message[name] = value
        return
    message.set_raw(name, Header(value, "utf-8", header_name=name).encode(linesep=POLICY.linesep))


def _add_body(message: EmailMessage, outgoing: OutgoingEmail) -> None:
    # Quoted-printable keeps every part 7-bit clean, so no server without 8BITMIME can mangle æøå or Arabic.
    message.set_content(outgoing.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    if outgoing.html:
        message.add_alternative(outgoing.html, subtype="html", charset="utf-8", cte="quoted-printable")
    # The structure that Google Calendar itself sends, and that Gmail, Outlook and Apple Mail all understand:
    #
    #   multipart/mixed
    #   ├── multipart/alternative
    #   │   ├── text/plain
    #   │   ├── text/html
    #   │   └── text/calendar; method=REQUEST    ← Outlook and Gmail turn this into an invitation with buttons
    #   └── application/ics  invite.ics          ← the same file to open or save (Apple Mail, webmail, phones)
    #
    # The downloadable copy is application/ics rather than text/calendar: Outlook treats every text/calendar
    # part with a METHOD as a meeting message and could otherwise show the invitation twice.
    calendar = _first_calendar(outgoing.attachments)
    if calendar is not None:
        content_type, attachment = calendar
        message.add_alternative(
            attachment.data,
            maintype="text",
            subtype="calendar",
            params={"method": str(content_type.params["method"]).upper(), "charset": "UTF-8"},
        )
    for attachment in outgoing.attachments:
        content_type = _content_type(attachment)
        if calendar is not None and attachment is calendar[1]:
            maintype, subtype = "application", "ics"
        else:
            maintype, subtype = content_type.maintype, content_type.subtype
        message.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=one_line(attachment.filename)
        )


def _first_calendar(attachments: Iterable[Attachment]) -> tuple[ContentTypeHeader, Attachment] | None:
    # Only an iTIP object (one with METHOD) is an invitation; one is all a mail client will act on.
    for attachment in attachments:
        content_type = _content_type(attachment)
        if content_type.content_type == "text/calendar" and "method" in content_type.params:
            return content_type, attachment
    return None


def _content_type(attachment: Attachment) -> ContentTypeHeader:
    # The registry builds a ContentTypeHeader for this name; typeshed cannot express that.
    return cast(ContentTypeHeader, _HEADERS("Content-Type", one_line(attachment.content_type)))


def one_line(value: str) -> str:
    """`value` with every line break (CR, LF and the Unicode separators) turned into a space."""
    return " ".join(part.strip() for part in value.splitlines()).strip()


def parse_single_address(value: str) -> Address:
    """The one mailbox in `value` (`kari@example.no`, `Kari Nordmann <kari@example.no>`), or ValueError.

    An internationalised domain comes back in its IDNA form (`kari@xn--bjlsen-cya.no` for `kari@bjølsen.no`):
    the SMTP policy would otherwise write it as an RFC 2047 encoded word, which is not allowed inside an
    address (`kari@=?utf-8?q?bj=C3=B8lsen?=.no` reaches nobody), and the SMTP envelope would need SMTPUTF8.
    """
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


def message_id(notification_id: str, sender: Address) -> str:
    """`<notification-token@sender-domain>`: stable per notification, unique across senders."""
    return f"<{safe_token(notification_id)}@{sender.domain or _FALLBACK_DOMAIN}>"


def _check_header_name(name: str) -> None:
    # RFC 5322 field names are printable ASCII without colon or space.
    printable = all(33 <= ord(char) <= 126 and char != ":" for char in name)
    lowered = name.lower()
    if not name or not printable or lowered in _RESERVED_HEADERS or lowered.startswith("content-"):
        raise ValueError(f"header {name!r} may not be set by the caller")
