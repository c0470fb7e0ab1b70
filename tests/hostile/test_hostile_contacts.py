"""Almost-valid phone numbers and e-mail addresses: the contract either normalises them into something every
channel can use, or marks the channel unusable; it never lets through something a channel then refuses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings

from notify_shared.channels import OutgoingEmail
from notify_shared.channels.mime import compose_message, parse_single_address
from notify_shared.contract import Channel, ContactProblem, Recipient
from notify_shared.contract.contacts import normalise_email, normalise_phone

from .hostile_inputs import E164, HOSTILE, email_address, parse_wire, phone_number


@settings(HOSTILE, max_examples=300)
@given(email_address())
def test_an_address_the_contract_accepts_is_one_the_email_builder_sends_to_unchanged(raw: str) -> None:
    normalised = normalise_email(raw)
    if normalised is None:
        return
    assert normalised.isascii(), "an internationalised domain in IDNA form; no SMTPUTF8 mailbox names"
    assert parse_single_address(normalised).addr_spec == normalised
    outgoing = OutgoingEmail(
        to=normalised, subject="Hei", text="Hei", html="", sender="no-reply@bjolsen.example.no", notification_id="n-1"
    )
    parsed = parse_wire(compose_message(outgoing, now=datetime(2026, 1, 1, tzinfo=UTC)).data)
    assert len(parsed.get_all("To") or []) == 1
    (address,) = parsed["To"].addresses
    assert address.addr_spec == normalised


@settings(HOSTILE, max_examples=300)
@given(phone_number())
def test_a_number_the_contract_accepts_is_plain_e164(raw: str) -> None:
    normalised = normalise_phone(raw)
    assert normalised is None or E164.fullmatch(normalised), normalised


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("kari@bjølsen.no", "kari@xn--bjlsen-cya.no"),
        ("KARI@EXAMPLE.NO", "KARI@example.no"),
        ("kåre@example.no", None),
        ("=?utf-8?q?kari?=@example.no", None),
        ("kari@example.no\r\nBcc: evil@example.com", None),
        ("Kari <kari@example.no>", None),
        ("kari@example.no, ola@example.no", None),
    ],
)
def test_almost_valid_addresses_are_normalised_or_refused(raw: str, expected: str | None) -> None:
    assert normalise_email(raw) == expected


def test_an_unusable_address_fails_only_the_email_channel() -> None:
    guardian = Recipient(
        guardian_id="g-1",
        name="Kari",
        email="kåre@example.no",
        phone="912 34 567",
        channels=(Channel.EMAIL, Channel.SMS),
        has_parental_responsibility=True,
    )

    assert guardian.contact_problem(Channel.EMAIL) is ContactProblem.INVALID_EMAIL
    assert guardian.contact_problem(Channel.SMS) is None
    assert guardian.phone == "+4791234567"
