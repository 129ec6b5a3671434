"""Tracking hits: verify the token, build the Hit, have it classified and stored.

A click token older than ``click_token_max_age`` (its mint time, carried in the
token) is refused with the same 404 as a forged one: a link quoted, forwarded
or copied for years stays a signed redirect on the tracking domain only so long
(docs/rules.md rule 4).
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache
from urllib.parse import quote

from mailbeacon.core import tokens
from mailbeacon.core.classify import Hit
from mailbeacon.core.events import EventType
from mailbeacon.core.ipranges import truncate_ip
from mailbeacon.core.policy import TeamPolicy
from mailbeacon.core.tokens import Claims, Kind
from mailbeacon.server import claim
from mailbeacon.server.proxies import TrustedProxies
from mailbeacon.server.reader import Reader
from mailbeacon.server.recorder import Commit, HitRequest, Recorder, RecorderStopped
from mailbeacon.server.users import UserKeys

log = logging.getLogger(__name__)

Headers = Iterable[tuple[bytes, bytes]]
# Every printable ASCII character stays as it is; anything else (controls, spaces,
# non-ASCII) is percent-encoded, so a Location header can never be split or rejected.
_LOCATION_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))
# Verified tokens remembered (bounded: pixel tokens are ~70 characters).
_CACHED_TOKENS = 4096
_CACHED_TOKEN_CHARS = 256
DAY = 86400.0
DEFAULT_CLICK_TOKEN_MAX_DAYS = 730


def iso_utc(at: float) -> str:
    """UTC ISO 8601 with milliseconds, e.g. ``2026-01-02T03:04:05.678Z``."""
    # Rounded to microseconds first, exactly as datetime.fromtimestamp does.
    fraction, whole = math.modf(at)
    micros = round(fraction * 1e6)
    second = int(whole)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    elif micros < 0:
        second, micros = second - 1, micros + 1_000_000
    return f"{_iso_second(second)}.{micros // 1000:03d}Z"


@lru_cache(maxsize=8)
def _iso_second(second: int) -> str:
    # Hits arrive many to a second: format the date and time once per second.
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def location_for(target: str) -> bytes | None:
    """The Location header for a click target, or None when it is no http(s) URL."""
    if not target[:8].lower().startswith(("http://", "https://")):
        return None
    return quote(target, safe=_LOCATION_SAFE).encode("ascii")


class Tracker:
    """Turns pixel and link requests into stored events."""

    def __init__(
        self,
        secret: bytes,
        users: UserKeys,
        reader: Reader,
        recorder: Recorder,
        proxies: TrustedProxies,
        clock: Callable[[], float] = time.time,
        user_agent_limit: int = 1024,
        truncate_ips: bool = False,
        click_token_max_age: float = DEFAULT_CLICK_TOKEN_MAX_DAYS * DAY,
        policy: Callable[[], TeamPolicy] = TeamPolicy,
    ) -> None:
        # The team's policy now (team.py, PolicyWatch): tracking off for the account
        # means hits are answered but nothing is recorded or streamed.
        self._policy = policy
        self._secret = secret
        self._users = users
        self._reader = reader
        self._recorder = recorder
        self._proxies = proxies
        self._clock = clock
        self._ua_limit = user_agent_limit
        self._truncate_ips = truncate_ips
        self._click_max_age = click_token_max_age
        # Oldest dropped first. An OrderedDict, not a dict: a dict's first key, once
        # many have been deleted before it, is found by walking past their holes.
        self._verified: OrderedDict[str, Claims] = OrderedDict()
        self._policy_seen: tuple[TeamPolicy, bool, bool] | None = None

    def _decided(self, policy: TeamPolicy) -> tuple[bool, bool]:
        """(tracking allowed, addresses truncated) under ``policy``: worked out once per
        policy, not per hit (the pixel path; a new policy is a new object)."""
        seen = self._policy_seen
        if seen is None or seen[0] is not policy:
            truncate = self._truncate_ips or policy.value("privacy.truncate_ip") == "true"
            seen = self._policy_seen = (policy, policy.tracking_allowed, truncate)
        return seen[1], seen[2]

    def verified_now(self, token: str, kind: Kind) -> Claims | Lookup | None:
        """The token's claims if it is genuine, of ``kind``, and its user exists; or
        ``LOOKUP`` when its user must first be looked up in the database (await
        :meth:`verified`). Without waiting: the pixel path answers most hits with it."""
        cached = self._verified.get(token)
        if cached is not None:
            return cached if cached.kind is kind else None
        opened = tokens.peek(token)
        if opened is None:
            return None
        user_id, raw = opened
        key = self._users.known(user_id)
        if key is None:
            return None if self._users.recently_missing(user_id) else LOOKUP
        return self._checked(token, raw, key, user_id, kind)

    async def verified(self, token: str, kind: Kind) -> Claims | None:
        """The token's claims if it is genuine, of ``kind``, and its user exists."""
        claims = self.verified_now(token, kind)
        if claims is not LOOKUP:
            return claims
        opened = tokens.peek(token)
        assert opened is not None  # verified_now decoded it
        user_id, raw = opened
        key = await self._lookup(user_id)
        return None if key is None else self._checked(token, raw, key, user_id, kind)

    def _checked(
        self, token: str, raw: bytes, key: bytes, user_id: int, kind: Kind
    ) -> Claims | None:
        claims = tokens.verify_decoded(raw, key)
        if claims is None or claims.kind is not kind or claims.user_id != user_id:
            return None
        if len(token) <= _CACHED_TOKEN_CHARS:
            # Opens repeat (preview panes, proxies, reloads): skip the HMAC next time.
            self._verified[token] = claims
            if len(self._verified) > _CACHED_TOKENS:
                self._verified.popitem(last=False)
        return claims

    async def _lookup(self, user_id: int) -> bytes | None:
        if self._users.recently_missing(user_id):
            return None
        try:
            user = await self._reader.get_user(user_id)
        except Exception:
            # The database does not answer (PostgreSQL down): the token is still checked
            # against the key derived from the secret, and removed users stay refused,
            # so the hit is kept (in the outage spool) rather than lost.
            log.debug("user %d looked up without the database", user_id, exc_info=True)
            return self._users.add(user_id)
        if user is None:
            self._users.add_missing(user_id)
            return None
        return self._users.add(user_id)

    def client_ip(self, peer: str, headers: Headers) -> str:
        """The client's address (X-Forwarded-For only from trusted proxies)."""
        if not self._proxies:
            return peer
        forwarded = [v for k, v in headers if k == b"x-forwarded-for"]
        return self._proxies.client_ip(peer, forwarded)

    def location(self, claims: Claims) -> bytes | None:
        """A click's Location header, or None (404) when the token is no click, has
        expired, or its target is no web link: answered exactly like a forged one."""
        if claims.target is None or self._clock() - claims.minted_at > self._click_max_age:
            return None
        return location_for(claims.target)

    def record(
        self, claims: Claims, type_: EventType, method: str, peer: str, headers: Headers
    ) -> Commit | None:
        """Hand the hit to the recorder; the commit is done once the hit is committed
        (or could not be: the recorder logs why, the visitor is answered all the same).
        None when nothing is recorded (tracking off for the account, or stopping)."""
        request = self._request(claims, type_, method, peer, headers)
        if request is None:
            return None
        try:
            return self._recorder.commit_later(request)
        except RecorderStopped:
            log.warning("hit arrived while stopping; not recorded")
            return None

    def _request(
        self, claims: Claims, type_: EventType, method: str, peer: str, headers: Headers
    ) -> HitRequest | None:
        allowed, truncate = self._decided(self._policy())
        if not allowed:
            return None
        user_agent = b""
        cookie: bytes | None = None
        forwarded: list[bytes] = []
        for name, value in headers:
            if name == b"user-agent":
                user_agent = value[: self._ua_limit * 4]
            elif name == b"cookie":
                cookie = value if cookie is None else cookie + b"; " + value
            elif name == b"x-forwarded-for":
                forwarded.append(value)
        ip = self._proxies.client_ip(peer, forwarded) if self._proxies else peer
        ua = user_agent.decode("utf-8", "replace")[: self._ua_limit]
        at = self._clock()
        # Positional, in Hit's field order (type, method, ip, user_agent, at, minted_at,
        # message, recipient, link, honeypot, claimed_browser): with keywords the call
        # costs three times as much, and every hit makes one (docs/performance.md).
        hit = Hit(
            type_,
            method,
            ip,
            ua,
            at,
            claims.minted_at,
            claims.message_key,
            claims.recipient_key,
            claims.link_index,
            claims.link_index == tokens.HONEYPOT_LINK,
            claim.is_claimed(self._secret, claims.user_id, cookie),
        )
        # Classified with the full address; only the truncated one is stored (rule 8).
        stored_ip = truncate_ip(ip) if truncate else None
        return HitRequest(claims.user_id, hit, iso_utc(at), ua, claims.target, stored_ip)


class Lookup(Enum):
    """A token whose user is not known yet: :meth:`Tracker.verified` looks it up."""

    NEEDED = "lookup"


LOOKUP = Lookup.NEEDED
