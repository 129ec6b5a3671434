"""What a message found in the rep's Sent folder is, for one tracked send.

A copy is *provably ours* (:attr:`CopyKind.TRACKED`, the only kind ever deleted)
when its Message-ID is the sent one AND it carries a pixel whose token verifies
with the rep's signing key, for this rep and one of this email's message keys.
Tracking that names this email but does not verify (another key, links without
the pixel) is :attr:`CopyKind.UNPROVEN` and left alone. Bodies are read with
their transfer encodings undone, so a provider that re-encodes a part to base64
does not hide the pixel. Pure: bytes in, a verdict out; damaged input never raises.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from mailbeacon.agent.mailbox.imap_parse import Value
from mailbeacon.core import tokens
from mailbeacon.core.extract import header_value
from mailbeacon.core.mime import MimeError, decode_body, parse_message, walk
from mailbeacon.core.tokens import Kind
from mailbeacon.core.urls import CLICK_PREFIX, PIXEL_PREFIX, PIXEL_SUFFIX

# Pixel and click tokens in a decoded body (the shortest token is 58 characters).
_TOKEN = rb"([A-Za-z0-9_-]{58,})"
_PIXEL = re.compile(re.escape(PIXEL_PREFIX.encode()) + _TOKEN + re.escape(PIXEL_SUFFIX.encode()))
_CLICK = re.compile(re.escape(CLICK_PREFIX.encode()) + _TOKEN)


class CopyKind(StrEnum):
    """What a message found in Sent is, for one sent email."""

    TRACKED = "tracked"  # provably ours: same Message-ID, carries our verified pixel
    CLEAN = "clean"  # same Message-ID, no tracking of this email: the untracked copy
    UNPROVEN = "unproven"  # this email's tracking, but not provably ours: left alone
    OTHER = "other"  # a different message (the header search matched a substring)


@dataclass(frozen=True, slots=True)
class Identity:
    """Whose pixels are ours: the rep's user id and signing key (from the enrollment)."""

    user_id: int
    signing_key: bytes


def classify_copy(
    raw: bytes, message_id: str, message_keys: Iterable[str], identity: Identity
) -> CopyKind:
    """What ``raw`` (a message in Sent) is for the email sent as ``message_id``."""
    if not same_message_id(header_value(raw, "Message-ID"), message_id):
        return CopyKind.OTHER
    keys = frozenset(message_keys)
    pixels, clicks = tracking_tokens(raw)
    for token in pixels:
        claims = tokens.verify(token, identity.signing_key)
        if (
            claims is not None
            and claims.kind is Kind.OPEN
            and claims.user_id == identity.user_id
            and claims.message_key in keys
        ):
            return CopyKind.TRACKED
    for token in (*pixels, *clicks):
        unverified = tokens.parse_unverified(token)
        if unverified is not None and unverified.message_key in keys:
            return CopyKind.UNPROVEN
    return CopyKind.CLEAN


def same_message_id(found: str | None, sent: str) -> bool:
    """Whether a Message-ID header names the sent email (whitespace and folding aside)."""
    if found is None:
        return False
    return "".join(found.split()) == "".join(sent.split())


def tracking_tokens(raw: bytes) -> tuple[list[str], list[str]]:
    """Pixel and click tokens in the message's text parts (transfer encodings undone)."""
    pixels: dict[str, None] = {}
    clicks: dict[str, None] = {}
    for body in _text_bodies(raw):
        for match in _PIXEL.finditer(body):
            pixels[match.group(1).decode("ascii")] = None
        for match in _CLICK.finditer(body):
            clicks[match.group(1).decode("ascii")] = None
    return list(pixels), list(clicks)


def _text_bodies(raw: bytes) -> list[bytes]:
    try:
        root = parse_message(raw)
    except MimeError:
        return [raw, binascii.a2b_qp(raw)]  # cannot split it: look at it whole
    bodies = [
        decode_body(raw, part, strict=False)
        for part in walk(root)
        if not part.children and part.content_type.startswith("text/")
    ]
    return bodies or [raw]


def message_id_of(items: dict[str, Value]) -> str | None:
    """The Message-ID in a fetched ``BODY[HEADER.FIELDS (MESSAGE-ID)]``, if any."""
    for key, value in items.items():
        if key.startswith("BODY[HEADER.FIELDS") and isinstance(value, bytes):
            return header_value(value, "Message-ID")
    return None


def flagged_deleted(items: dict[str, Value]) -> bool:
    """Whether the fetched FLAGS hold ``\\Deleted`` (the copy is on its way out)."""
    flags = items.get("FLAGS")
    return isinstance(flags, list) and any(
        isinstance(f, bytes) and f.upper() == b"\\DELETED" for f in flags
    )
