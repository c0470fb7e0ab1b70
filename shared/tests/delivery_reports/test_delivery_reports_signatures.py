"""Signatures on delivery reports: ours (HMAC-SHA256 of the body) and Twilio's, against Twilio's published vectors."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest

from notify_shared.delivery_reports.signatures import (
    notify_signature,
    notify_signature_headers,
    notify_signature_matches,
    twilio_signature,
    twilio_signature_matches,
)

# The example in Twilio's webhook security documentation and the test suites of its helper libraries.
TWILIO_TOKEN = "12345"
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
    ("Caller", "+14158675309"),
]
TWILIO_EXPECTED = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_our_signature_is_the_hex_hmac_sha256_of_the_timestamp_a_full_stop_and_the_raw_body() -> None:
    body = b'{"id": "gw-1", "status": "delivered"}'
    digest = hmac.new(b"s3cret", b"1765148400." + body, hashlib.sha256).hexdigest()

    assert notify_signature("s3cret", body, 1765148400) == f"sha256={digest}"
    assert notify_signature_headers("s3cret", body, now=1765148400.7) == {
        "X-Notify-Timestamp": "1765148400",
        "X-Notify-Signature": f"sha256={digest}",
    }
    for header in (f"sha256={digest.upper()}", f" sha256={digest} "):
        assert notify_signature_matches(
            "s3cret", body, header, "1765148400", tolerance=timedelta(minutes=5), now=1765148400
        )


@pytest.mark.parametrize(("signed_at", "accepted"), [(-301, False), (-300, True), (0, True), (300, True), (301, False)])
def test_a_signature_counts_only_within_the_tolerance_either_side_of_our_clock(signed_at: int, accepted: bool) -> None:
    now = 1765148400
    headers = notify_signature_headers("s3cret", b"{}", now=now + signed_at)

    assert (
        notify_signature_matches(
            "s3cret",
            b"{}",
            headers["X-Notify-Signature"],
            headers["X-Notify-Timestamp"],
            tolerance=timedelta(minutes=5),
            now=now,
        )
        is accepted
    )


@pytest.mark.parametrize("header", [None, "", "sha256=", "sha256=zz", "md5=abc", "sha256=ø" * 3])
@pytest.mark.parametrize("timestamp", [None, "", "1765148400", "-1", "1e9", "١٧٦٥١٤٨٤٠٠"])
def test_anything_else_is_not_our_signature(header: str | None, timestamp: str | None) -> None:
    assert not notify_signature_matches(
        "s3cret", b"{}", header, timestamp, tolerance=timedelta(minutes=5), now=1765148400
    )


def test_twilios_signature_matches_twilios_documented_example() -> None:
    assert twilio_signature(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS) == TWILIO_EXPECTED
    assert twilio_signature_matches(TWILIO_TOKEN, [TWILIO_URL], TWILIO_PARAMS, TWILIO_EXPECTED)


def test_twilios_signature_sorts_repeated_parameters_by_value() -> None:
    params = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]

    assert twilio_signature(TWILIO_TOKEN, TWILIO_URL, params) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        # Signed with the standard port written out; we saw the URL without it.
        (TWILIO_URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),
        (TWILIO_URL.replace("https", "http"), "0ZXoZLH/DfblKGATFgpif+LLRf4="),
        # Signed without a port; we saw a port the proxy added.
        (TWILIO_URL.replace(".com", ".com:1234"), TWILIO_EXPECTED),
    ],
)
def test_twilios_signature_is_accepted_with_or_without_the_port(url: str, signature: str) -> None:
    assert twilio_signature_matches(TWILIO_TOKEN, [url], TWILIO_PARAMS, signature)


def test_a_twilio_signature_for_other_parameters_or_another_token_does_not_match() -> None:
    tampered = [*TWILIO_PARAMS[:-1], ("Caller", "+14158675300")]

    assert not twilio_signature_matches(TWILIO_TOKEN, [TWILIO_URL], tampered, TWILIO_EXPECTED)
    assert not twilio_signature_matches("54321", [TWILIO_URL], TWILIO_PARAMS, TWILIO_EXPECTED)
    assert not twilio_signature_matches(TWILIO_TOKEN, [TWILIO_URL], TWILIO_PARAMS, None)
