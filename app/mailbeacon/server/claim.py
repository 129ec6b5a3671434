"""The "this browser is mine" cookie that ``/claim/<token>`` sets for a rep."""

from __future__ import annotations

import hashlib
import hmac
import secrets

COOKIE_PREFIX = "mb_self_"
MAX_AGE = 400 * 86400  # the longest lifetime browsers honour
_MAC_CHARS = 32


def cookie_name(user_id: int) -> str:
    """The cookie of one user (a shared browser can be claimed by several reps)."""
    return f"{COOKIE_PREFIX}{user_id}"


def _mac(secret: bytes, user_id: int, nonce: str) -> str:
    message = b"mailbeacon-claim:%d:%s" % (user_id, nonce.encode("ascii"))
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:_MAC_CHARS]


def new_cookie_value(secret: bytes, user_id: int) -> str:
    """A fresh signed value: ``nonce.mac``."""
    nonce = secrets.token_urlsafe(12)
    return f"{nonce}.{_mac(secret, user_id, nonce)}"


def set_cookie_header(secret: bytes, user_id: int, secure: bool) -> bytes:
    """The Set-Cookie header value for a claim."""
    parts = [
        f"{cookie_name(user_id)}={new_cookie_value(secret, user_id)}",
        "Path=/",
        f"Max-Age={MAX_AGE}",
        "HttpOnly",
        "SameSite=Lax",
    ]
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode("ascii")


def is_claimed(secret: bytes, user_id: int, cookie_header: bytes | None) -> bool:
    """True when the request carries a valid claim cookie for ``user_id``."""
    if not cookie_header:
        return False
    name = cookie_name(user_id).encode("ascii") + b"="
    if name not in cookie_header:
        return False
    for raw in cookie_header.split(b";"):
        part = raw.strip()
        if not part.startswith(name):
            continue
        try:
            nonce, _, mac = part[len(name) :].decode("ascii").partition(".")
        except UnicodeDecodeError:
            continue
        if nonce and mac and hmac.compare_digest(mac, _mac(secret, user_id, nonce)):
            return True
    return False
