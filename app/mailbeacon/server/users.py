"""Users: API tokens (stored only as hashes) and the per-user signing keys."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from mailbeacon.core.tokens import derive_signing_key
from mailbeacon.server.store import Store

API_TOKEN_BYTES = 32


def hash_token(api_token: str) -> str:
    """What the store keeps of an API token (a leaked database reveals no token)."""
    return hashlib.sha256(api_token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class NewUser:
    """A freshly created user and the API token that is shown once."""

    id: int
    name: str
    api_token: str


def create_user(store: Store, name: str, created_at: str) -> NewUser:
    """Create a user with a fresh API token."""
    token = secrets.token_urlsafe(API_TOKEN_BYTES)
    user_id = store.add_user(name, hash_token(token), created_at)
    return NewUser(user_id, name, token)


class UserKeys:
    """Signing keys of known users, derived once; misses are looked up in the store.

    Users can be added by another process (``server add-user``) while the server runs,
    so an unknown id is looked up, and a miss is remembered only briefly (a flood of
    forged tokens with random ids costs one lookup per id per ``negative_ttl``).
    """

    def __init__(
        self,
        secret: bytes,
        clock: Callable[[], float] = time.monotonic,
        negative_ttl: float = 5.0,
        negative_limit: int = 4096,
    ) -> None:
        self._secret = secret
        self._clock = clock
        self._keys: dict[int, bytes] = {}
        self._missing: OrderedDict[int, float] = OrderedDict()
        self._negative_ttl = negative_ttl
        self._negative_limit = negative_limit

    def known(self, user_id: int) -> bytes | None:
        """The key of a user already known to exist (no lookup)."""
        return self._keys.get(user_id)

    def recently_missing(self, user_id: int) -> bool:
        """True when a lookup for this id found nothing a moment ago."""
        since = self._missing.get(user_id)
        if since is None:
            return False
        if self._clock() - since < self._negative_ttl:
            return True
        del self._missing[user_id]
        return False

    def add(self, user_id: int) -> bytes:
        """Record that a user exists; returns its signing key."""
        self._missing.pop(user_id, None)
        key = self._keys.get(user_id)
        if key is None:
            key = derive_signing_key(self._secret, user_id)
            self._keys[user_id] = key
        return key

    def add_missing(self, user_id: int) -> None:
        """Record that a lookup for this id found nothing."""
        self._missing[user_id] = self._clock()
        self._missing.move_to_end(user_id)
        while len(self._missing) > self._negative_limit:
            self._missing.popitem(last=False)
