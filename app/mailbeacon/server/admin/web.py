"""What every console response and form shares: security headers, cookies, the posted
form and its checks (same origin, CSRF token).

The headers: a strict Content-Security-Policy (only this server's own stylesheet; no
script, no frame, forms post only here), no caching, no referrer to other sites, no
framing. Cookies
are ``Secure; HttpOnly; SameSite=Strict`` on ``/admin``: a page on another site can
neither read nor send them, so a cross-site form post arrives without a session and is
refused, and its CSRF token could not match either.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import Response

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "cache-control": "no-store",
    # same-origin: the browser names this origin on the console's own form posts (with
    # no-referrer it sends "Origin: null", which same_origin refuses) and none elsewhere.
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
SESSION_COOKIE = "mb_admin"
LOGIN_COOKIE = "mb_login"  # the login form's CSRF token, before there is a session
COOKIE_PATH = "/admin"
MAX_FORM_BYTES = 64 * 1024


def secured(response: Response) -> Response:
    """``response`` with the console's security headers."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def set_cookie(response: Response, name: str, value: str, max_age: int | None) -> None:
    """A ``Secure; HttpOnly; SameSite=Strict`` cookie on the console's path."""
    response.set_cookie(
        name, value, max_age=max_age, path=COOKIE_PATH, secure=True, httponly=True,
        samesite="strict",
    )  # fmt: skip


def clear_cookie(response: Response, name: str) -> None:
    """Remove a cookie set by :func:`set_cookie`."""
    response.delete_cookie(name, path=COOKIE_PATH, secure=True, httponly=True, samesite="strict")


class FormRefused(Exception):
    """A posted form that is not taken (too large, another site's, a wrong token)."""


async def read_form(request: Request) -> dict[str, str]:
    """The posted ``application/x-www-form-urlencoded`` fields (last value of each)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise FormRefused("not a form")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormRefused("form too large")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[-1] for key, values in fields.items()}


def same_origin(request: Request) -> bool:
    """False when the browser says the form came from another site (``Origin`` or,
    without it, ``Referer`` naming another host)."""
    host = request.headers.get("host", "")
    origin = request.headers.get("origin")
    if origin is not None:
        return origin != "null" and urlsplit(origin).netloc == host
    referer = request.headers.get("referer")
    return referer is None or urlsplit(referer).netloc == host


def check_token(expected: str, given: str | None) -> bool:
    """Whether the form's CSRF token is the expected one (constant time)."""
    return bool(expected) and given is not None and hmac.compare_digest(expected, given)
