"""SASL bearer-token logins: XOAUTH2 and OAUTHBEARER (RFC 7628), as bytes.

The SMTP client (``agent/sending/upstream.py``) and the IMAP client
(``agent/mailbox/imap_client.py``) both log in with an OAuth access token the
same way; what differs is only how the bytes travel (``AUTH`` / ``334`` versus
``AUTHENTICATE`` / ``+``). This module holds the part they share and that has no
I/O: the client's initial response, which mechanism to use of those the server
offers, and what the JSON error a server sends in its challenge says.

A server that refuses the token does not fail the command at once: it sends the
error as a challenge and waits for one more client response (RFC 7628 3.2.3),
:func:`error_reply`; only then does it answer with a failure.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "OAUTHBEARER",
    "XOAUTH2",
    "BearerRefusal",
    "Mechanism",
    "choose_mechanism",
    "encode",
    "error_reply",
    "initial_response",
    "oauthbearer_response",
    "parse_refusal",
    "xoauth2_response",
]

Mechanism = Literal["OAUTHBEARER", "XOAUTH2"]
OAUTHBEARER: Mechanism = "OAUTHBEARER"
XOAUTH2: Mechanism = "XOAUTH2"

# RFC 6750 b64token: what a bearer token may hold; anything else would let a
# token smuggle a field separator (\x01) or a line end into the exchange.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_SEPARATOR = "\x01"


def choose_mechanism(offered: Iterable[str]) -> Mechanism | None:
    """The bearer mechanism to use of those the server offers; None when it offers neither.

    OAUTHBEARER is the standard (RFC 7628) and carries host and port, so it wins
    when offered; XOAUTH2 is Google's and Microsoft's older form.
    """
    names = {name.strip().upper() for name in offered}
    if OAUTHBEARER in names:
        return OAUTHBEARER
    if XOAUTH2 in names:
        return XOAUTH2
    return None


def xoauth2_response(user: str, token: str) -> bytes:
    """XOAUTH2's initial response, unencoded: ``user=<u>^Aauth=Bearer <t>^A^A``."""
    _check(user, token)
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def oauthbearer_response(user: str, token: str, host: str, port: int) -> bytes:
    """OAUTHBEARER's initial response, unencoded (RFC 7628 3.1), with the gs2 header.

    The user goes in the gs2 authzid, where ``,`` and ``=`` must be escaped
    (RFC 5801 4).
    """
    _check(user, token)
    if _SEPARATOR in host or not 0 < port < 65536:
        raise ValueError(f"not a server address: {host!r} port {port}")
    authzid = user.replace("=", "=3D").replace(",", "=2C")
    return (
        f"n,a={authzid},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"
    ).encode()


def initial_response(mechanism: Mechanism, user: str, token: str, host: str, port: int) -> bytes:
    """The initial response for ``mechanism``, unencoded."""
    if mechanism == OAUTHBEARER:
        return oauthbearer_response(user, token, host, port)
    return xoauth2_response(user, token)


def encode(response: bytes) -> str:
    """A client response as it goes on the wire: base64 (an empty response is an empty line)."""
    return base64.b64encode(response).decode("ascii")


def error_reply(mechanism: Mechanism) -> bytes:
    """The client's answer to an error challenge, unencoded, so the server ends the exchange.

    OAUTHBEARER wants a lone ``^A`` (RFC 7628 3.2.3); XOAUTH2 an empty response.
    """
    return _SEPARATOR.encode() if mechanism == OAUTHBEARER else b""


@dataclass(frozen=True, slots=True)
class BearerRefusal:
    """What a server's error challenge says about the token (RFC 7628 3.2.2)."""

    status: str
    scope: str = ""
    openid_configuration: str = ""

    @property
    def token_rejected(self) -> bool:
        """The token itself was refused (expired, revoked, not for this user): a fresh
        one may help. ``invalid_token`` is RFC 7628's word, ``401`` XOAUTH2's."""
        return self.status in ("invalid_token", "401", "")

    def describe(self) -> str:
        """The refusal in a few words, for a log line or the rep's sentence."""
        words = {
            "invalid_token": "the sign-in token was not accepted",
            "401": "the sign-in token was not accepted",
            "insufficient_scope": "the sign-in does not allow mail access",
            "403": "the sign-in does not allow mail access",
            "invalid_request": "the server did not understand the sign-in",
            "400": "the server did not understand the sign-in",
        }
        text = words.get(self.status, f"the server refused the sign-in ({self.status})")
        return f"{text} (scope {self.scope})" if self.scope else text


def parse_refusal(challenge: str | bytes) -> BearerRefusal:
    """The JSON error in a server's challenge (base64, as sent); never raises.

    A challenge that is not base64 JSON still means the token was refused; its
    status is then empty.
    """
    raw = challenge.encode("ascii", "replace") if isinstance(challenge, str) else challenge
    try:
        data = json.loads(base64.b64decode(raw.strip(), validate=True))
    except (binascii.Error, ValueError):
        return BearerRefusal("")
    if not isinstance(data, dict):
        return BearerRefusal("")
    return BearerRefusal(
        status=str(data.get("status", "")),
        scope=str(data.get("scope", "")),
        openid_configuration=str(data.get("openid-configuration", "")),
    )


def _check(user: str, token: str) -> None:
    """Refuse what would break the message's framing (a separator, a line end)."""
    if not user or any(c in user for c in "\x00\x01\r\n"):
        raise ValueError("the user name for a token login is empty or has control characters")
    if not _B64TOKEN.fullmatch(token):
        raise ValueError("the access token has characters a bearer token cannot have")
