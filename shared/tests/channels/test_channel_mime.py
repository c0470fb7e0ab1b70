"""The MIME message built for every email: structure mail clients understand, and no header injection."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from email.headerregistry import AddressHeader, HeaderRegistry
from email.message import EmailMessage
from typing import cast

import pytest

from notify_shared.channels import Attachment, OutgoingEmail, build_message
from notify_shared.channels.mime import compose_message, parse_single_address
from notify_shared.channels.tokens import safe_token

MakeEmail = Callable[..., OutgoingEmail]


def round_trip(outgoing: OutgoingEmail) -> tuple[bytes, EmailMessage]:
    """The bytes a server would receive, and what a mail client parses from them."""
    wire = compose_message(outgoing, now=datetime(2025, 9, 1, 8, 0, tzinfo=UTC)).data
    return wire, email.message_from_bytes(wire, policy=email.policy.default)


def test_a_subject_with_a_line_break_cannot_add_a_bcc_header(make_invitation: MakeEmail) -> None:
    wire, parsed = round_trip(make_invitation(1, subject="Hi\r\nBcc: evil@example.com"))

    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Hi Bcc: evil@example.com"
    assert b"\r\nBcc:" not in wire


@pytest.mark.parametrize("separator", ["\n", "\r", "\r\n", "\u2028", "\x85"])
def test_no_kind_of_line_break_in_a_header_value_starts_a_new_header(
    make_invitation: MakeEmail, separator: str
) -> None:
    invitation = replace(
        make_invitation(1, subject=f"Foreldremøte{separator}Bcc: evil@example.com"),
        headers={"X-School-Ref": f"5B{separator}Cc: evil@example.com"},
    )

    _, parsed = round_trip(invitation)

    assert parsed["Bcc"] is None
    assert parsed["Cc"] is None
    assert parsed["X-School-Ref"] == "5B Cc: evil@example.com"


def test_a_recipient_with_an_injected_header_is_refused(make_invitation: MakeEmail) -> None:
    with pytest.raises(ValueError, match="address"):
        build_message(make_invitation(1, to="kari@example.no\nBcc: evil@example.com"))


@pytest.mark.parametrize("name", ["Bcc", "To", "From", "Content-Type", "MIME-Version", "X-Bad Name", "X:Y", ""])
def test_callers_cannot_set_address_or_structure_headers(make_invitation: MakeEmail, name: str) -> None:
    with pytest.raises(ValueError, match="may not be set"):
        build_message(replace(make_invitation(1), headers={name: "x"}))


def test_an_invitation_is_text_html_and_calendar_alternatives_plus_an_ics_file(
    make_invitation: MakeEmail,
) -> None:
    invitation = make_invitation(1)

    _, parsed = round_trip(invitation)

    assert parsed.get_content_type() == "multipart/mixed"
    alternative, ics_file = parsed.iter_parts()
    assert [part.get_content_type() for part in alternative.iter_parts()] == [
        "text/plain",
        "text/html",
        "text/calendar",
    ]
    calendar = list(alternative.iter_parts())[2]
    assert calendar.get_param("method") == "REQUEST"
    assert calendar.get_content_charset() == "utf-8"
    assert calendar.get_content().encode() == invitation.attachments[0].data
    # The registered type for the downloadable copy too, with the method its METHOD line needs (RFC 5545).
    assert ics_file.get_content_type() == "text/calendar"
    assert ics_file.get_param("method") == "REQUEST"
    assert ics_file.get_content_charset() == "utf-8"
    assert ics_file.get_content_disposition() == "attachment"
    assert ics_file.get_filename() == "invite.ics"
    assert ics_file.get_payload(decode=True) == invitation.attachments[0].data


def test_a_cancellation_keeps_its_method(make_invitation: MakeEmail) -> None:
    cancel = Attachment("cancel.ics", "text/calendar; method=CANCEL; charset=UTF-8", b"BEGIN:VCALENDAR\r\n")

    _, parsed = round_trip(replace(make_invitation(1), attachments=(cancel,)))

    invitation_part, downloadable_copy = (part for part in parsed.walk() if part.get_content_type() == "text/calendar")
    assert invitation_part.get_param("method") == downloadable_copy.get_param("method") == "CANCEL"
    assert downloadable_copy.get_filename() == "cancel.ics"


def test_other_attachments_are_attached_as_they_are(make_invitation: MakeEmail) -> None:
    agenda = Attachment("agenda.pdf", "application/pdf", b"%PDF-1.7 agenda")

    _, parsed = round_trip(replace(make_invitation(1), attachments=(agenda,)))

    assert [part.get_content_type() for part in parsed.walk()].count("text/calendar") == 0
    (attached,) = parsed.iter_attachments()
    assert attached.get_content_type() == "application/pdf"
    assert attached.get_content() == b"%PDF-1.7 agenda"


def test_text_in_any_language_survives_the_trip(make_invitation: MakeEmail) -> None:
    arabic = "مرحبا! أنت مدعو إلى محادثة تطوير حول إيما."
    invitation = replace(
        make_invitation(1, to="Åse Ødegård <ase@example.no>", subject="Utviklingssamtale: Ærlig og åpen"),
        text=arabic,
    )

    _, parsed = round_trip(invitation)

    assert parsed["Subject"] == "Utviklingssamtale: Ærlig og åpen"
    assert parsed["To"].addresses[0].display_name == "Åse Ødegård"
    plain = parsed.get_body(preferencelist=("plain",))
    assert plain is not None
    assert plain.get_content().strip() == arabic


def test_message_id_is_the_same_for_every_send_of_one_notification(make_invitation: MakeEmail) -> None:
    first, second, other = make_invitation(1), make_invitation(1), make_invitation(2)

    ids = [build_message(invitation)["Message-ID"] for invitation in (first, second, other)]

    assert ids[0] == ids[1] == "<ntf-3f1c9a7e-0001@haugen-skole.no>"
    assert ids[2] != ids[0]


def test_a_caller_may_choose_the_message_id(make_invitation: MakeEmail) -> None:
    invitation = replace(make_invitation(1), headers={"Message-ID": "<resend-42@haugen-skole.no>"})

    assert build_message(invitation).get_all("Message-ID") == ["<resend-42@haugen-skole.no>"]


def test_the_email_is_marked_automatic_and_dated(make_invitation: MakeEmail) -> None:
    _, parsed = round_trip(make_invitation(1))

    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Date"].datetime == datetime(2025, 9, 1, 8, 0, tzinfo=UTC)


def test_an_email_without_html_is_plain_text(make_invitation: MakeEmail) -> None:
    _, parsed = round_trip(replace(make_invitation(1), html="", attachments=()))

    assert parsed.get_content_type() == "text/plain"


@pytest.mark.parametrize("notification_id", ["../../etc/passwd", "ntf/2025:10", ".hidden", "-rf", "a" * 300, "møte-1"])
def test_any_notification_id_becomes_a_safe_distinct_token(notification_id: str) -> None:
    token = safe_token(notification_id)

    assert token[0].isalnum() or token[0] == "_"
    assert set(token) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    assert len(token) <= 100
    assert safe_token(notification_id + "x") != token


def test_a_uuid_notification_id_is_kept_as_it_is() -> None:
    assert safe_token("3f1c9a7e-4b2d-4c8e-9f10-2a6b7c8d9e0f") == "3f1c9a7e-4b2d-4c8e-9f10-2a6b7c8d9e0f"


def test_the_wire_is_seven_bit_with_crlf_line_ends_and_short_lines(make_invitation: MakeEmail) -> None:
    invitation = replace(
        make_invitation(1, to="Åse Ødegård <ase@example.no>", subject="Utviklingssamtale: " + "ærlig og åpen " * 12),
        text="Første linje\n" + "lang linje med æøå " * 40 + "\nslutt med mellomrom   \n.\n",
    )

    wire, parsed = round_trip(invitation)

    assert wire.isascii()
    assert b"\n" not in wire.replace(b"\r\n", b"")
    assert max(len(line) for line in wire.split(b"\r\n")) <= 78
    plain = parsed.get_body(preferencelist=("plain",))
    assert plain is not None
    assert plain.get_content().splitlines() == invitation.text.splitlines()


def test_text_that_looks_like_a_part_boundary_cannot_end_a_part(make_invitation: MakeEmail) -> None:
    fake = "--=_notify_000000000000000000000000\r\nContent-Type: text/html\r\n\r\n<script>x</script>\r\n"
    invitation = replace(make_invitation(1), text=fake, html=f"<p>{fake}</p>")

    _, parsed = round_trip(invitation)

    alternative, _ = parsed.iter_parts()
    assert [part.get_content_type() for part in alternative.iter_parts()] == [
        "text/plain",
        "text/html",
        "text/calendar",
    ]
    plain = parsed.get_body(preferencelist=("plain",))
    assert plain is not None
    assert plain.get_content().splitlines() == fake.splitlines()


def test_a_sender_name_in_any_script_and_a_long_one_read_back_exactly(make_invitation: MakeEmail) -> None:
    long_name = "Skolevarsel for foreldre og foresatte ved " + "Bjølsen og Sagene skoler " * 3
    for sender_name in ("Skolevarsel Bjølsen", "مدرسة بيولسن", long_name, 'Skole "Nord", 7B'):
        invitation = replace(make_invitation(1), sender=f"{_quoted(sender_name)} <post@haugen-skole.no>")

        _, parsed = round_trip(invitation)

        (sender,) = parsed["From"].addresses
        assert (sender.display_name, sender.addr_spec) == (sender_name.strip(), "post@haugen-skole.no")


def test_an_attachment_with_a_name_beyond_ascii_keeps_its_name(make_invitation: MakeEmail) -> None:
    agenda = Attachment('Møteplan "7B".pdf', "application/pdf", b"%PDF-1.7 agenda")

    _, parsed = round_trip(replace(make_invitation(1), attachments=(agenda,)))

    (attached,) = parsed.iter_attachments()
    assert attached.get_filename() == 'Møteplan "7B".pdf'


def _quoted(display_name: str) -> str:
    return '"' + display_name.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.mark.parametrize(
    "raw",
    [
        "kari@example.no",
        "o.hansen+skole@sub.example.no",
        "a!#$%&'*+/=?^_`{|}~-b@example.no",
        "x@a-b.example.no",
        ".kari@example.no",
        "kari..nordmann@example.no",
        "kari.@example.no",
        "kari@example",
        "kari@-example.no",
    ],
)
def test_the_quick_path_for_bare_addresses_agrees_with_the_full_parser(raw: str) -> None:
    header = HeaderRegistry()("To", raw)
    addresses = cast(AddressHeader, header).addresses  # the registry's class for "To"; typeshed cannot tell
    full = addresses[0] if len(addresses) == 1 and not header.defects else None
    try:
        quick = parse_single_address(raw)
    except ValueError:
        quick = None
    if full is None or not full.username or not full.domain:
        assert quick is None
    else:
        assert quick is not None
        assert (quick.username, quick.domain, quick.display_name) == (full.username, full.domain, full.display_name)
