"""Spotting tracking URLs that earlier emails left in an outgoing one (rule 4).

A URL is a stale tracking URL when its path ends in ``/o/<token>.gif`` (a pixel)
or ``/c/<token>`` (a tracked link) and the token is one of *ours*: the
``ours`` verifier (the rep's signing key, ``TrackingUrls.verify``) accepts it.
A token someone else signed, or forged, is left exactly as it is: unwrapping it
and tracking its target afresh would put the rep's signature on a target
someone else chose (docs/rules.md rule 4).

:data:`ANY_SIGNER` accepts any token that parses; it is for telling whether a
URL *is* a tracking URL at all (never wrapped again, rule 2), and for callers
that hold no key and never sign what they unwrap.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from urllib.parse import quote

from mailbeacon.core import tokens
from mailbeacon.core.tokens import Claims, Kind

# Shortest token that can parse: 43 raw bytes in unpadded base64.
_MIN_TOKEN = 58
# A URL longer than this is not one MailBeacon minted (targets are capped at 8 KB).
_MAX_URL = 16_384
# How far back from "/c/<token>" the "http(s)://" of the same URL may start.
_MAX_PREFIX = 2048
# Unwrap at most this many layers of tracked-link-inside-tracked-link.
_MAX_LAYERS = 4

_TRACKING_URL = re.compile(
    r"(?i:https?)://[^/?#\s]+(?:/[^?#\s]*)?/(?P<kind>[oc])/(?P<token>[A-Za-z0-9_-]+)"
    r"(?P<gif>\.gif)?(?:[?#]\S*)?"
)
# A click token inside arbitrary text, ending the URL path.
_CLICK_IN_TEXT = re.compile(
    r"/c/(?P<token>[A-Za-z0-9_-]{" + str(_MIN_TOKEN) + r",})(?![A-Za-z0-9_/-]|\.\w)"
)
_SCHEME = re.compile(r"(?i:https?)://")
_URL_BREAK = re.compile(r"[\s\"'<>`]")
# Printable ASCII a URL may carry as is; everything else is percent-encoded.
_URL_SAFE = "!#$%&'()*+,-./:;=?@[]^_`{|}~"

# A token's claims if it is acceptable (e.g. signed with the rep's key), else None.
Verifier = Callable[[str], Claims | None]
ANY_SIGNER: Verifier = tokens.parse_unverified


def tracking_claims(url: str, ours: Verifier = ANY_SIGNER) -> Claims | None:
    """The claims of a pixel or tracked-link URL whose token ``ours`` accepts, else None."""
    if len(url) > _MAX_URL:
        return None
    m = _TRACKING_URL.fullmatch(url)
    if m is None:
        return None
    claims = ours(m["token"])
    if claims is None:
        return None
    if m["kind"] == "o":
        return claims if m["gif"] and claims.kind is Kind.OPEN else None
    return claims if not m["gif"] and claims.kind is Kind.CLICK else None


def is_stale_pixel(url: str, ours: Verifier = ANY_SIGNER) -> bool:
    """Whether ``url`` is a MailBeacon pixel whose token ``ours`` accepts."""
    claims = tracking_claims(url, ours)
    return claims is not None and claims.kind is Kind.OPEN


def click_claims(url: str, ours: Verifier = ANY_SIGNER) -> Claims | None:
    """The claims of a tracked-link URL, unwrapping nested tracked links; else None.
    Unwrapping stops at the first layer ``ours`` does not accept."""
    found: Claims | None = None
    for _ in range(_MAX_LAYERS):
        claims = tracking_claims(url, ours)
        if claims is None or claims.kind is not Kind.CLICK or claims.target is None:
            break
        found = claims
        url = claims.target
    return found


def find_stale_clicks(
    text: str, start: int = 0, end: int | None = None, ours: Verifier = ANY_SIGNER
) -> Iterator[tuple[int, int, Claims]]:
    """Spans of tracked-link URLs (``ours``) written anywhere in ``text[start:end]``,
    with their claims."""
    stop = len(text) if end is None else end
    for m in _CLICK_IN_TEXT.finditer(text, start, stop):
        lo = max(start, m.start() - _MAX_PREFIX)
        schemes = list(_SCHEME.finditer(text, lo, m.start()))
        scheme = schemes[-1] if schemes else None
        if scheme is None or _URL_BREAK.search(text, scheme.end(), m.start()):
            continue
        claims = click_claims(text[scheme.start() : m.end()], ours)
        if claims is not None:
            yield scheme.start(), m.end(), claims


def unwrap_text(text: str, ours: Verifier = ANY_SIGNER) -> tuple[str, int]:
    """Plain text with every tracked-link URL (``ours``) replaced by its target (ASCII,
    percent-encoded where needed so it stays one clickable URL), and how many were replaced."""
    pieces: list[str] = []
    pos = 0
    count = 0
    for start, end, claims in find_stale_clicks(text, ours=ours):
        pieces.append(text[pos:start])
        pieces.append(quote(claims.target or "", safe=_URL_SAFE))
        pos = end
        count += 1
    if not count:
        return text, 0
    pieces.append(text[pos:])
    return "".join(pieces), count
