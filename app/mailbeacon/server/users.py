"""Users: API tokens (stored only as hashes), the per-user signing keys, and revocation.

Revocation (``server remove-user``, ``server rotate-key``) runs in another process
than the server, so it reaches a running server through the database: the command
changes the users table and bumps the ``users_generation`` meta value in the same
transaction; the server reads that one value on a short timer
(:class:`UsersWatch`) and, when it moved, forgets what it cached about the users
concerned and closes their streams. The pixel path never queries for it: a removed
user's id simply stops resolving to a key. See docs/promises.md#isolation.

A rotated key is the old derivation with a generation number
(``key_generations`` meta value, a JSON object ``{"user id": generation}``), so
the users table keeps its shape and a user keeps their id, events and claims.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mailbeacon.core.tokens import derive_signing_key
from mailbeacon.server.meta import SECRET_KEY
from mailbeacon.server.sqlite_store import SqliteStore
from mailbeacon.server.store import Store, UserRecord

API_TOKEN_BYTES = 32
USERS_GENERATION_KEY = "users_generation"
KEY_GENERATIONS_KEY = "key_generations"
# The ids of removed users (a JSON list): a lookup that raced with the removal (it
# read the row just before it went) must still never cache a key for them.
REMOVED_KEY = "removed_users"


def signing_key(secret: bytes, user_id: int, generation: int = 0) -> bytes:
    """A user's signing key; ``generation`` counts ``rotate-key`` runs (0: never)."""
    if generation == 0:
        return derive_signing_key(secret, user_id)  # every key minted before rotation
    message = b"mailbeacon-user-key:%d:rotation:%d" % (user_id, generation)
    return hmac.new(secret, message, hashlib.sha256).digest()


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
        generations: dict[int, int] | None = None,
        removed: frozenset[int] = frozenset(),
    ) -> None:
        self._secret = secret
        self._clock = clock
        self._generations = dict(generations or {})
        self._removed = removed
        self._keys: dict[int, bytes] = {}
        self._missing: OrderedDict[int, float] = OrderedDict()
        self._negative_ttl = negative_ttl
        self._negative_limit = negative_limit

    def known(self, user_id: int) -> bytes | None:
        """The key of a user already known to exist (no lookup)."""
        if user_id in self._removed:
            return None
        return self._keys.get(user_id)

    def recently_missing(self, user_id: int) -> bool:
        """True when a lookup for this id found nothing a moment ago (or the user was
        removed: no lookup needed)."""
        if user_id in self._removed:
            return True
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
            key = signing_key(self._secret, user_id, self._generations.get(user_id, 0))
            self._keys[user_id] = key
        return key

    def known_ids(self) -> set[int]:
        """The users whose keys are cached."""
        return set(self._keys)

    def revise(self, change: UsersChange) -> None:
        """Take new key generations and removals; forget the cached keys of the changed
        users (removed or rotated): their next token is looked up again."""
        self._generations = dict(change.generations)
        self._removed = change.removed
        for user_id in change.changed:
            self._keys.pop(user_id, None)

    def add_missing(self, user_id: int) -> None:
        """Record that a lookup for this id found nothing."""
        self._missing[user_id] = self._clock()
        self._missing.move_to_end(user_id)
        while len(self._missing) > self._negative_limit:
            self._missing.popitem(last=False)


def key_generations(store: Store) -> dict[int, int]:
    """Each rotated user's key generation (users never rotated are absent: 0)."""
    text = store.get_meta(KEY_GENERATIONS_KEY)
    if not text:
        return {}
    raw = json.loads(text)
    return {int(user_id): int(generation) for user_id, generation in raw.items()}


def removed_users(store: Store) -> frozenset[int]:
    """The ids of users removed with ``server remove-user``."""
    text = store.get_meta(REMOVED_KEY)
    return frozenset(int(user_id) for user_id in json.loads(text)) if text else frozenset()


def users_generation(store: Store) -> int:
    """The counter every removal or rotation bumps (what a running server watches)."""
    return int(store.get_meta(USERS_GENERATION_KEY) or 0)


def _bump(store: Store) -> None:
    store.set_meta(USERS_GENERATION_KEY, str(users_generation(store) + 1))


class UserAdmin:
    """The operator's user changes (removal, a new API token, rotation) on a store.

    Only the operator commands change users this way; the server reads them through
    :class:`UsersWatch`. ``store`` is SQLite or PostgreSQL alike.
    """

    def __init__(self, store: Store | Path) -> None:
        # A path: the SQLite file (the embedded server's, as the agent names it).
        self.store: Store = SqliteStore(store) if isinstance(store, Path) else store

    @property
    def where(self) -> str:
        """The database, as the operator named it (for messages)."""
        return str(getattr(self.store, "where", "the database"))

    def users_named(self, name: str) -> list[UserRecord]:
        """Every user with this name, oldest first (names need not be unique)."""
        return self.store.users_named(name)

    def get_meta(self, key: str) -> str | None:
        """A server setting, or None."""
        return self.store.get_meta(key)

    def remove_user(self, user_id: int) -> bool:
        """Delete the user (their API token and key go with them); False if unknown.

        Their events stay until retention deletes them; ids are never reused
        (AUTOINCREMENT, an identity column), so a later user cannot inherit their tokens.
        """
        store = self.store
        with store.transaction():
            removed = store.delete_user(user_id)
            if removed:
                ids = sorted(removed_users(store) | {user_id})
                store.set_meta(REMOVED_KEY, json.dumps(ids))
                _bump(store)
        return removed

    def new_api_token(self, user_id: int) -> str | None:
        """A new API token for the user, the same id and signing key (tokens in mail
        already sent keep working); None if unknown. The old API token stops working."""
        token = secrets.token_urlsafe(API_TOKEN_BYTES)
        with self.store.transaction():
            changed = self.store.set_token_hash(user_id, hash_token(token))
            if changed:
                _bump(self.store)
        return token if changed else None

    def take_secret(self) -> bytes | None:
        """The secret this database generated for itself, removed from it (it moves to
        the desktop's keyring); None if it holds none."""
        with self.store.transaction():
            value = self.store.get_meta(SECRET_KEY)
            if value:
                self.store.delete_meta(SECRET_KEY)
        return value.encode("ascii") if value else None

    def rotate(self, user_id: int) -> tuple[str, int] | None:
        """A new API token and key generation for the user: ``(api_token, generation)``,
        or None if unknown. The old token and every token signed with the old key stop
        working."""
        token = secrets.token_urlsafe(API_TOKEN_BYTES)
        store = self.store
        with store.transaction():
            if not store.set_token_hash(user_id, hash_token(token)):
                return None
            generations = key_generations(store)
            generation = generations.get(user_id, 0) + 1
            generations[user_id] = generation
            store.set_meta(
                KEY_GENERATIONS_KEY,
                json.dumps({str(k): v for k, v in sorted(generations.items())}),
            )
            _bump(store)
        return token, generation

    def close(self) -> None:
        """Release the connection."""
        self.store.close()


@dataclass(frozen=True, slots=True)
class UsersChange:
    """What a running server must forget: ``changed`` users (removed or rotated); and
    everyone's key generations and the removed users now."""

    changed: frozenset[int]
    generations: dict[int, int]
    removed: frozenset[int]


class UsersWatch:
    """Notices removals and rotations made by another process (see the module docstring).

    Holds a store connection of its own; :meth:`poll` runs on a worker thread.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._seen = users_generation(store)
        self.generations = key_generations(store)
        self.removed = removed_users(store)

    def poll(self, candidates: Iterable[int]) -> UsersChange | None:
        """None when nothing changed since the last poll; else which of ``candidates``
        (the users the server holds something of) were removed, plus every rotated
        user. Blocking: call it off the event loop."""
        generation = users_generation(self._store)
        if generation == self._seen:
            return None
        self._seen = generation
        generations = key_generations(self._store)
        removed = removed_users(self._store)
        rotated = {
            user_id for user_id, g in generations.items() if self.generations.get(user_id) != g
        }
        # Rows deleted some other way (by hand) are noticed among the users held.
        gone = {user_id for user_id in candidates if self._store.get_user(user_id) is None}
        changed = frozenset(rotated | gone | (removed - self.removed))
        self.generations, self.removed = generations, removed
        return UsersChange(changed, generations, removed)

    def close(self) -> None:
        """Release the connection."""
        self._store.close()
