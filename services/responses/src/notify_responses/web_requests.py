"""What the parents' pages (the answer page and the booking page) and the SMS webhook share when they read a
request and answer it: the security headers, the body read up to a limit, the same-origin check, the client's
address and the rate limiter's key for a link, which is a digest and never the credential itself."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse

from notify_responses.runtime import Runtime

MAX_FORM_FIELDS = 20

SECURITY_HEADERS = {
    # No script at all; the one stylesheet comes from here; the form posts only here; no page may frame this one.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
PAGE_HEADERS = SECURITY_HEADERS | {"Cache-Control": "no-store"}


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def html_page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


def client_address(request: Request) -> str:
    # Behind the ingress uvicorn's proxy-headers support (FORWARDED_ALLOW_IPS) puts the parent's address here.
    return request.client.host if request.client is not None else "unknown"


def link_key(token: str) -> str:
    # The limiter keeps a digest, not the credential itself.
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:32]


def same_origin(request: Request, public_url: str) -> bool:
    """False only for a browser that says it posts from another site. Under this page's no-referrer policy a
    browser sends `Origin: null` from the page itself, so "null" says nothing; the form's anti-forgery value is
    what protects the answer, this check only refuses what is plainly from elsewhere."""
    origin = request.headers.get("origin") or _origin_of(request.headers.get("referer"))
    if origin is None or origin == "null":
        return True
    return origin in {_origin_of(public_url), _origin_of(str(request.base_url))}


def _origin_of(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None once it is longer than `limit` (the rest is never read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
