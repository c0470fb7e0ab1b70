"""Can this channel reach this guardian? The contract's checks of the contact points, plus the number's type.

A well-formed number is not enough for SMS: a landline (`22 12 34 56` in Oslo) takes no text messages, yet most
gateways accept the request and report it sent. Such a number fails the SMS channel as `not_mobile`, before any
gateway is asked, and the notification goes by email where the guardian allowed both.
"""

from __future__ import annotations

import phonenumbers

from notify_shared.contract import Channel, Recipient

NOT_MOBILE = "not_mobile"
"""The `reason` of an SMS that was not sent because the number belongs to a landline or a service number."""

# Types that are known not to take SMS. Anything else passes: mobile numbers, North American numbers that may be
# either (FIXED_LINE_OR_MOBILE), personal and VoIP numbers that often forward SMS, and numbers of a type the
# library cannot tell (UNKNOWN), which a gateway may still reach; refusing those would silence a guardian on a guess.
_CANNOT_TAKE_SMS = frozenset(
    {
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
        phonenumbers.PhoneNumberType.SHARED_COST,
        phonenumbers.PhoneNumberType.UAN,
        phonenumbers.PhoneNumberType.VOICEMAIL,
        phonenumbers.PhoneNumberType.PAGER,
    }
)


def unreachable_by(guardian: Recipient, channel: Channel) -> str | None:
    """Why `channel` cannot reach `guardian` (`missing_phone`, `invalid_email`, `not_mobile`, …), or None."""
    problem = guardian.contact_problem(channel)
    if problem is not None:
        return problem.value
    if channel is Channel.SMS and guardian.phone is not None and not takes_sms(guardian.phone):
        return NOT_MOBILE
    return None


def takes_sms(phone: str) -> bool:
    """False for a number whose type cannot receive SMS (landline, toll-free, premium rate, …).

    `phone` is in E.164 form, as the contract normalises it.
    """
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(number) not in _CANNOT_TAKE_SMS
