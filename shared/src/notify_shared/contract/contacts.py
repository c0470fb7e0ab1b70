"""Normalising the contact points that admin systems send: phone numbers and email addresses.

A malformed address must not cost the other guardians of a class their invitation, so a contact point that fails
to normalise does not reject the event: it is kept as given and marked unusable, and the delivery for that one
channel fails with a clear status (see `Recipient.contact_problems`).
"""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

DEFAULT_PHONE_REGION = "NO"
# "=?utf-8?q?kari?=@example.no" is a valid address to RFC 5322, but mail software reads the mailbox as an RFC 2047
# encoded word (Python's parser decodes it to "kari" and flags a defect), so it is refused as a contact point.
_ENCODED_WORD = re.compile(r"=\?.*\?=")


def normalise_phone(raw: str, region: str = DEFAULT_PHONE_REGION) -> str | None:
    """Return the number in E.164 form, or None when it is not a valid phone number.

    Accepts E.164 (`+4791234567`), the international prefix (`004791234567`) and the Norwegian national form
    (`912 34 567`).
    """
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str | None:
    """Return the normalised address, or None when it is not a valid email address.

    Deliverability (DNS) is not checked: events are validated offline, and a bounce is reported by the channel.

    The result is all ASCII: an internationalised domain comes back in its IDNA form (`kari@xn--bjlsen-cya.no`
    for `kari@bjølsen.no`), which every mail server accepts. A non-ASCII mailbox name (`kåre@…`) is refused
    here: it needs SMTPUTF8, which the MIME builder does not produce, so it would only fail later as
    `invalid_address`. So is a mailbox name that looks like an RFC 2047 encoded word.
    """
    try:
        address = validate_email(raw, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    if _ENCODED_WORD.search(address.local_part):
        return None
    return address.ascii_email
