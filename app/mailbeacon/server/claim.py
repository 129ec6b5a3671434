"""The "this browser is mine" claim: the one-use link and the cookie it sets.

A claim link (``/claim/<token>``, minted by the rep's agent when the rep asks for
it) is good for :data:`LINK_SECONDS` after minting and for one use
(:class:`UsedClaims`): a link that leaks — pasted into a chat, forwarded in an
email — cannot make a stranger's browser count as the rep's own.

The cookie it sets carries the time it was issued, signed with the user id
(``issued.nonce.mac``). It is honoured for :data:`COOKIE_SECONDS` after that and
renewed whenever the browser uses it (``renewal``): a browser the rep keeps using
stays claimed; one left behind stops counting as theirs. Cookies from before this
format (``nonce.mac``, good for 400 days from one click) are not honoured: the rep
claims the browser again. See docs/promises.md#isolation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict

COOKIE_PREFIX = "mb_self_"
LINK_SECONDS = 600  # the rep clicks the link right after asking for it
# Agents' clocks may run ahead of the server's; a link minted "in the future" by
# more than this is refused like a forged one.
LINK_CLOCK_SKEW = 300
COOKIE_SECONDS = 30 * 86400  # idle time after which a claimed browser is no longer the rep's
MAX_AGE = COOKIE_SECONDS  # the cookie's Max-Age (the browser forgets it when we do)
_MAC_CHARS = 32
# Used links remembered until they expire anyway. Only genuine links get here (the
# token's MAC is checked first), so the bound is never reached in practice; if it
# were, the oldest are forgotten first.
_USED_LIMIT = 100_000


def cookie_name(user_id: int) -> str:
    """The cookie of one user (a shared browser can be claimed by several reps)."""
    return f"{COOKIE_PREFIX}{user_id}"


def _mac(secret: bytes, user_id: int, issued: int, nonce: str) -> str:
    message = b"mailbeacon-claim:%d:%d:%s" % (user_id, issued, nonce.encode("ascii"))
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:_MAC_CHARS]


def new_cookie_value(secret: bytes, user_id: int, issued: float | None = None) -> str:
    """A fresh signed value: ``issued.nonce.mac`` (``issued`` in unix seconds)."""
    at = int(time.time() if issued is None else issued)
    nonce = secrets.token_urlsafe(12)
    return f"{at}.{nonce}.{_mac(secret, user_id, at, nonce)}"


def set_cookie_header(
    secret: bytes, user_id: int, secure: bool, now: float | None = None
) -> bytes:
    """The Set-Cookie header value for a claim (or its renewal)."""
    parts = [
        f"{cookie_name(user_id)}={new_cookie_value(secret, user_id, now)}",
        "Path=/",
        f"Max-Age={MAX_AGE}",
        "HttpOnly",
        "SameSite=Lax",
    ]
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode("ascii")


def is_claimed(
    secret: bytes, user_id: int, cookie_header: bytes | None, now: float | None = None
) -> bool:
    """True when the request carries a valid, unexpired claim cookie for ``user_id``."""
    if not cookie_header:
        return False
    name = cookie_name(user_id).encode("ascii") + b"="
    if name not in cookie_header:
        return False
    at = time.time() if now is None else now
    for raw in cookie_header.split(b";"):
        part = raw.strip()
        if part.startswith(name) and _valid(secret, user_id, part[len(name) :], at):
            return True
    return False


def _valid(secret: bytes, user_id: int, value: bytes, now: float) -> bool:
    try:
        issued_text, nonce, mac = value.decode("ascii").split(".")
    except (UnicodeDecodeError, ValueError):
        return False  # not three parts: forged, or the old 400-day format
    if not (issued_text.isdigit() and len(issued_text) <= 12 and nonce and mac):
        return False
    issued = int(issued_text)
    if not -LINK_CLOCK_SKEW <= now - issued <= COOKIE_SECONDS:
        return False
    return hmac.compare_digest(mac, _mac(secret, user_id, issued, nonce))


def renewal(
    secret: bytes, user_id: int, cookie_header: bytes | None, secure: bool,
    now: float | None = None,
) -> bytes | None:
    """A Set-Cookie renewing the claim when the request carries a valid one, else None.

    Sliding expiry: each use pushes the end out to :data:`COOKIE_SECONDS` from now.
    """
    if cookie_header is None or COOKIE_PREFIX.encode("ascii") not in cookie_header:
        return None  # the usual hit: no claim cookie at all, nothing to compute
    if not is_claimed(secret, user_id, cookie_header, now):
        return None
    return set_cookie_header(secret, user_id, secure, now)


def link_is_fresh(minted_at: float, now: float) -> bool:
    """Whether a claim link minted at ``minted_at`` may still be used."""
    return -LINK_CLOCK_SKEW <= now - minted_at <= LINK_SECONDS


class UsedClaims:
    """Claim links already used, kept until they would have expired anyway.

    In memory: after a restart a link still young enough could be used once more
    (within :data:`LINK_SECONDS` of minting, by whoever holds it).
    """

    def __init__(self, limit: int = _USED_LIMIT) -> None:
        self._used: OrderedDict[str, float] = OrderedDict()  # token -> when it expires
        self._limit = limit

    def use(self, token: str, minted_at: float, now: float) -> bool:
        """Mark a fresh link used; False when it was used before (or is stale)."""
        self._forget_expired(now)
        if not link_is_fresh(minted_at, now) or token in self._used:
            return False
        self._used[token] = minted_at + LINK_SECONDS
        while len(self._used) > self._limit:
            self._used.popitem(last=False)
        return True

    def _forget_expired(self, now: float) -> None:
        # Insertion order is close to expiry order (links are used soon after minting).
        while self._used:
            token, expires = next(iter(self._used.items()))
            if expires >= now:
                return
            del self._used[token]

    def __len__(self) -> int:
        return len(self._used)
