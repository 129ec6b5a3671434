"""Tracking tokens: minted by the agent, verified by the server.

A token is ``base64url(body || mac)`` where ``body`` packs the user, a
time-ordered message key, the recipient key, the mint time and, for links, the link
index and target. ``mac`` is HMAC-SHA256 (truncated to 128 bits) under the user's signing
key, which the server derives from its own secret, so the agent can mint while
the server is down and no user can mint another user's tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

VERSION = 1
MAC_BYTES = 16
MESSAGE_KEY_BYTES = 12
RECIPIENT_KEY_BYTES = 8
MAX_TARGET_BYTES = 8192
SIGNING_KEY_BYTES = 32
# A message key is its mint time in milliseconds, then random bytes (as UUIDv7 does).
_KEY_TIME_BYTES = 6

_HEADER = struct.Struct(">BBIQ")  # version, kind, user id, mint time (unix seconds)
_LINK = struct.Struct(">H")
# The URL-safe alphabet decoded by binascii's strict standard decoder: "-" and "_"
# become "+" and "/", and the standard alphabet's own "+", "/" and "=" become "!",
# which the strict decoder refuses like any other character outside the alphabet
# (one C call instead of a regular expression and base64's Python wrapper: the pixel
# path decodes a token per hit).
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Unpadded base64's last character carries 4 (length % 4 == 2) or 2 (== 3) bits that
# are not data; the canonical encoding has them zero. Checked by this table instead of
# encoding the bytes again (the pixel path decodes a token per hit).
_CANONICAL_LAST = {0: None, 2: frozenset(_DIGITS[::16]), 3: frozenset(_DIGITS[::4])}
_PADDING = {0: b"", 2: b"==", 3: b"="}
# Shortest possible token: header, message key, recipient-length byte, MAC.
_MIN_RAW = _HEADER.size + MESSAGE_KEY_BYTES + 1 + MAC_BYTES
_MAX_TOKEN_CHARS = ((_MIN_RAW + 255 + _LINK.size + MAX_TARGET_BYTES) * 4) // 3 + 4


class Kind(IntEnum):
    """What a token opens: the pixel or a link."""

    OPEN = 0
    CLICK = 1
    CLAIM = 2


# Kind by its byte: an index, where calling Kind(byte) costs a third of a
# microsecond per token (the pixel path).
_KINDS = tuple(Kind)


# The link index of the hidden honeypot link: people never see it, scanners follow it.
HONEYPOT_LINK = 0xFFFF


@dataclass(slots=True)  # never changed once built; not frozen (docs/performance.md#records)
class Claims:
    """What a verified token says."""

    kind: Kind
    user_id: int
    message_key: str
    recipient_key: str | None
    minted_at: int
    link_index: int | None = None
    target: str | None = None


def derive_signing_key(server_secret: bytes, user_id: int) -> bytes:
    """The per-user signing key, derived from the server's secret."""
    return hmac.new(server_secret, b"mailbeacon-user-key:%d" % user_id, hashlib.sha256).digest()


def new_message_key(clock: Callable[[], float] = time.time) -> str:
    """A fresh message key (96 bits, hex): 48 bits of mint time in milliseconds, then
    48 random bits.

    Keys minted later sort later, so the server's index of events by message
    (``events_by_message``) takes a new email's events at its right edge, on the few
    pages that recent sends share, instead of on a random page each: most opens and
    clicks are of emails sent in the last hours (docs/performance.md, "Message keys
    in mint order"). The random half keeps keys minted in the same millisecond, by
    any number of agents, apart; the tokens are signed, so a key need not be
    unguessable, and the token already carries its mint time.
    """
    millis = int(clock() * 1000) % (1 << (8 * _KEY_TIME_BYTES))
    random_bytes = secrets.token_bytes(MESSAGE_KEY_BYTES - _KEY_TIME_BYTES)
    return (millis.to_bytes(_KEY_TIME_BYTES, "big") + random_bytes).hex()


def new_recipient_key() -> str:
    """A fresh random recipient key (64 bits, hex)."""
    return secrets.token_hex(RECIPIENT_KEY_BYTES)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    rest = len(text) % 4
    if rest == 1 or not text.isascii():
        return None
    # Only the canonical encoding is accepted, so no two strings name one token.
    last = _CANONICAL_LAST[rest]
    if last is not None and text[-1] not in last:
        return None
    standard = text.encode("ascii").translate(_TO_STANDARD) + _PADDING[rest]
    try:
        return binascii.a2b_base64(standard, strict_mode=True)
    except binascii.Error:
        return None


def _body(
    kind: Kind,
    user_id: int,
    message_key: str,
    recipient_key: str | None,
    minted_at: int,
) -> bytes:
    mkey = bytes.fromhex(message_key)
    rkey = bytes.fromhex(recipient_key) if recipient_key else b""
    if len(mkey) != MESSAGE_KEY_BYTES or len(rkey) > 255:
        raise ValueError("bad message or recipient key")
    return _HEADER.pack(VERSION, kind, user_id, minted_at) + mkey + bytes([len(rkey)]) + rkey


@lru_cache(maxsize=256)
def _keyed(key: bytes) -> hmac.HMAC:
    # The key schedule is computed once per key; each MAC then copies it.
    return hmac.new(key, digestmod=hashlib.sha256)


def _mac(key: bytes, body: bytes) -> bytes:
    mac = _keyed(key).copy()
    mac.update(body)
    return mac.digest()[:MAC_BYTES]


def _seal(key: bytes, body: bytes) -> str:
    return _b64(body + _mac(key, body))


def mint_open(
    key: bytes, user_id: int, message_key: str, recipient_key: str | None, minted_at: int
) -> str:
    """A pixel token."""
    return _seal(key, _body(Kind.OPEN, user_id, message_key, recipient_key, minted_at))


def mint_click(
    key: bytes,
    user_id: int,
    message_key: str,
    recipient_key: str | None,
    minted_at: int,
    link_index: int,
    target: str,
) -> str:
    """A link token that redirects to exactly ``target``."""
    encoded = target.encode("utf-8")
    if len(encoded) > MAX_TARGET_BYTES:
        raise ValueError("link target too long to track")
    body = _body(Kind.CLICK, user_id, message_key, recipient_key, minted_at)
    return _seal(key, body + _LINK.pack(link_index) + encoded)


def mint_claim(key: bytes, user_id: int, minted_at: int) -> str:
    """A browser-claim token: opening it marks that browser as the rep's own."""
    return _seal(key, _body(Kind.CLAIM, user_id, new_message_key(), None, minted_at))


def parse_unverified(token: str) -> Claims | None:
    """What a token claims, without checking its signature (to spot stale tokens
    from any user or server in outgoing mail). Never trust it for anything else."""
    raw = _decode(token)
    if raw is None:
        return None
    try:
        return _parse(raw[:-MAC_BYTES])
    except (ValueError, IndexError, struct.error, UnicodeDecodeError):
        return None


def peek_user(token: str) -> int | None:
    """The user id a token claims, before verification (to pick the key)."""
    opened = peek(token)
    return None if opened is None else opened[0]


def peek(token: str) -> tuple[int, bytes] | None:
    """(the user id a token claims, its decoded bytes for :func:`verify_decoded`), or
    None when it is no token: the server decodes each token once (the pixel path)."""
    raw = _decode(token)
    if raw is None:
        return None
    return _HEADER.unpack_from(raw)[2], raw


def _decode(token: str) -> bytes | None:
    if not isinstance(token, str) or not (0 < len(token) <= _MAX_TOKEN_CHARS):
        return None
    raw = _unb64(token)
    if raw is None or len(raw) < _MIN_RAW or raw[0] != VERSION:
        return None
    return raw


def verify(token: str, key: bytes) -> Claims | None:
    """The token's claims if ``key`` signed it, else None. Never raises."""
    raw = _decode(token)
    return None if raw is None else verify_decoded(raw, key)


def verify_decoded(raw: bytes, key: bytes) -> Claims | None:
    """:func:`verify` for a token already decoded by :func:`peek`."""
    body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(key, body)):
        return None
    try:
        return _parse(body)
    except (ValueError, IndexError, struct.error, UnicodeDecodeError):
        return None


def _parse(body: bytes) -> Claims | None:
    _version, kind_byte, user_id, minted_at = _HEADER.unpack_from(body)
    pos = _HEADER.size
    mkey = body[pos : pos + MESSAGE_KEY_BYTES]
    pos += MESSAGE_KEY_BYTES
    rlen = body[pos]
    pos += 1
    rkey = body[pos : pos + rlen]
    if len(rkey) != rlen:
        return None
    pos += rlen
    kind = _KINDS[kind_byte]  # IndexError for an unknown kind
    recipient = rkey.hex() if rkey else None
    if kind is not Kind.CLICK:
        if pos != len(body):
            return None
        return Claims(kind, user_id, mkey.hex(), recipient, minted_at)
    (index,) = _LINK.unpack_from(body, pos)
    target = body[pos + _LINK.size :].decode("utf-8")
    if not target:
        return None
    if "\x00" in target:
        # Agents before 0.3.1 minted links holding a NUL, which PostgreSQL cannot
        # store (the whole group of hits would fail). "%00" is what the Location
        # header says for it anyway (server/tracker.py location_for), so the
        # redirect is unchanged and the stored URL is the one the visitor was sent to.
        target = target.replace("\x00", "%00")
    return Claims(kind, user_id, mkey.hex(), recipient, minted_at, index, target)
