"""Telling a genuine delivery report from a forged one: our HMAC-SHA256 signature, and Twilio's HMAC-SHA1.

Both compare in constant time (`hmac.compare_digest`), so the time an answer takes says nothing about how much of
a guessed signature was right.

Ours signs a timestamp with the body, and a report whose timestamp is outside the tolerance window is refused:
a report someone captured (from a log, a proxy) cannot be played back later. Twilio's signature has no timestamp;
a replayed Twilio report can only repeat a status the ledger already holds (`repeated`), never change it back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

NOTIFY_SIGNATURE_HEADER = "X-Notify-Signature"
"""`sha256=<hex>`: HMAC-SHA256 of `<timestamp>.` followed by the raw request body, keyed with the route's secret."""
NOTIFY_TIMESTAMP_HEADER = "X-Notify-Timestamp"
"""When the report was signed, in whole seconds since 1970 (Unix time, UTC)."""
TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"
"""Twilio's signature of the callback URL and its form parameters, keyed with the account's auth token."""

_PREFIX = "sha256="
_STANDARD_PORTS = {"https": 443, "http": 80}


def notify_signature(secret: str, body: bytes, timestamp: int) -> str:
    """The `X-Notify-Signature` value for `body` signed at `timestamp` (Unix seconds): `sha256=` and the lowercase
    hex HMAC-SHA256 of the timestamp in decimal, a full stop, and the body."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return _PREFIX + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def notify_signature_headers(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """Both headers a sender puts on a report: `X-Notify-Timestamp` (now) and `X-Notify-Signature`."""
    timestamp = int(time.time() if now is None else now)
    return {NOTIFY_TIMESTAMP_HEADER: str(timestamp), NOTIFY_SIGNATURE_HEADER: notify_signature(secret, body, timestamp)}


def notify_signature_matches(
    secret: str,
    body: bytes,
    header: str | None,
    timestamp_header: str | None,
    *,
    tolerance: timedelta,
    now: float | None = None,
) -> bool:
    """True when `header` signs exactly these bytes at `timestamp_header`, and that time is within `tolerance` of
    `now` (either way, for clocks a little apart). Hex digits in either case."""
    if not header or not timestamp_header:
        return False
    stamp = timestamp_header.strip()
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        return False
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance.total_seconds():
        return False
    given = header.strip()
    if given[: len(_PREFIX)].lower() != _PREFIX:
        return False
    expected = notify_signature(secret, body, int(stamp))[len(_PREFIX) :].encode()
    # compare_digest wants ASCII on both sides; a header with other characters is simply wrong.
    return hmac.compare_digest(expected, given[len(_PREFIX) :].lower().encode("ascii", "replace"))


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's request signature, as its webhook security documentation and helper libraries compute it.

    The full URL Twilio called (scheme, host, path and query) followed by every POST parameter as name and value
    run together, in order of name (then value), each distinct pair once; HMAC-SHA1 keyed with the auth token,
    base64-encoded.
    """
    data = url + "".join(name + value for name, value in sorted(set(params)))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode("ascii")


def twilio_signature_matches(
    auth_token: str, urls: Sequence[str], params: Sequence[tuple[str, str]], header: str | None
) -> bool:
    """True when `header` signs `params` for one of `urls`, each tried with and without its standard port.

    Twilio signs the URL as it was configured; behind a proxy the service cannot see it, so the caller offers the
    configured callback URL and the one rebuilt from the request. The port variants follow Twilio's own helper
    libraries, which accept both `https://host/…` and `https://host:443/…`.
    """
    if not header:
        return False
    given = header.strip().encode("ascii", "replace")
    matched = False
    candidates = dict.fromkeys(variant for url in urls for variant in _port_variants(url))
    for candidate in candidates:
        # No early exit: every variant costs the same whether or not an earlier one matched.
        matched |= hmac.compare_digest(twilio_signature(auth_token, candidate, params).encode(), given)
    return matched


def _port_variants(url: str) -> Iterator[str]:
    yield url
    parts = urlsplit(url)
    standard = _STANDARD_PORTS.get(parts.scheme)
    if standard is None or parts.hostname is None:
        return
    try:
        port = parts.port
    except ValueError:
        return
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    if port is None:
        yield urlunsplit(parts._replace(netloc=f"{prefix}{host}:{standard}"))
    else:
        yield urlunsplit(parts._replace(netloc=f"{prefix}{host}"))
