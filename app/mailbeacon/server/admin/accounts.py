"""Administrators, their one-time set-up links and their sessions (SQL for both back
ends through ``Store.rows`` / ``Store.write``).

Passwords are hashed with Argon2id (argon2-cffi's defaults, which follow RFC 9106's
recommendation); set-up and session tokens are random and kept only as SHA-256
hashes, so a leaked database opens no session. Hashing is slow on purpose: callers run
these functions off the event loop.

What the set-up page shows of an :class:`AdminError` is a :class:`Phrase`: English
where a ``str`` goes (the command line), said again in the administrator's language by
the console.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mailbeacon.core.language import PHRASES, Phrase, mark
from mailbeacon.server.store import Store

SETUP_SECONDS = 72 * 3600  # a set-up link works once, within three days
SESSION_SECONDS = 12 * 3600  # a session lasts a working day, then log in again
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
MAX_NAME = 64
_HASHER = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so a wrong name costs as long as a
    wrong password (no telling which names exist by timing). Made at the first log-in,
    not at import: hashing takes ~0.1 s, and every command line imports this module."""
    return _HASHER.hash(secrets.token_urlsafe(16))


class AdminError(ValueError):
    """Something the administrator can fix (the message says what)."""


def token_hash(token: str) -> str:
    """What the database keeps of a set-up or session token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def has_admin(store: Store) -> bool:
    """Whether the console is on (an administrator exists, set up or not)."""
    return bool(store.rows("SELECT 1 FROM admins LIMIT 1"))


def add_admin(store: Store, name: str, now: float, created_at: str) -> str:
    """Create administrator ``name`` (or renew their set-up link); returns the one-time
    set-up token. The password is chosen on the set-up page."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        raise AdminError(f"NAME must be 1 to {MAX_NAME} printable characters")
    token = secrets.token_urlsafe(32)
    with store.transaction():
        changed = store.write(
            "UPDATE admins SET setup_hash = ?, setup_expires = ? WHERE name = ?",
            (token_hash(token), now + SETUP_SECONDS, name),
        )
        if not changed:
            store.write(
                "INSERT INTO admins (name, password_hash, setup_hash, setup_expires, "
                "created_at) VALUES (?, NULL, ?, ?, ?)",
                (name, token_hash(token), now + SETUP_SECONDS, created_at),
            )
    return token


def setup_name(store: Store, token: str, now: float) -> str | None:
    """The administrator a set-up token is for, if it is valid now."""
    rows = store.rows(
        "SELECT name FROM admins WHERE setup_hash = ? AND setup_expires > ?",
        (token_hash(token), now),
    )
    return str(rows[0][0]) if rows else None


def check_password(password: str) -> None:
    """Refuse a password too short or too long (AdminError)."""
    if len(password) < MIN_PASSWORD:
        raise AdminError(PHRASES.n("Choose a password of at least {count} character.",
                                   "Choose a password of at least {count} characters.",
                                   MIN_PASSWORD))  # fmt: skip
    if len(password) > MAX_PASSWORD:
        raise AdminError(PHRASES.n("A password may have at most {count} character.",
                                   "A password may have at most {count} characters.",
                                   MAX_PASSWORD))  # fmt: skip


def complete_setup(store: Store, token: str, password: str, now: float) -> str:
    """Set the password of the set-up link's administrator (the link then stops
    working); returns their name. AdminError when the link or password will not do."""
    check_password(password)
    hashed = _HASHER.hash(password)
    with store.transaction():
        name = setup_name(store, token, now)
        if name is None:
            raise AdminError(Phrase(mark("This set-up link was used already or has expired.")))
        store.write(
            "UPDATE admins SET password_hash = ?, setup_hash = NULL, setup_expires = NULL "
            "WHERE name = ?",
            (hashed, name),
        )
        # Sessions opened with an earlier password end with it.
        store.write(
            "DELETE FROM admin_sessions WHERE admin_id IN (SELECT id FROM admins WHERE name = ?)",
            (name,),
        )
    return name


def verify_login(store: Store, name: str, password: str) -> int | None:
    """The administrator's id when the password is theirs, else None."""
    # Made (once) before the name is looked up: the first log-in costs the same
    # whether or not the name exists.
    dummy = _dummy_hash()
    rows = store.rows(
        "SELECT id, password_hash FROM admins WHERE name = ? AND password_hash IS NOT NULL",
        (name.strip(),),
    )
    stored = str(rows[0][1]) if rows else dummy
    try:
        _HASHER.verify(stored, password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        return None
    return int(str(rows[0][0])) if rows else None


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in administrator: who, and the CSRF token of every form they post."""

    admin_id: int
    name: str
    csrf: str


def open_session(store: Store, admin_id: int, now: float) -> tuple[str, Session]:
    """A new session: (the cookie's token, the session)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with store.transaction():
        store.write("DELETE FROM admin_sessions WHERE expires <= ?", (now,))
        store.write(
            "INSERT INTO admin_sessions (token_hash, admin_id, csrf, expires) VALUES (?, ?, ?, ?)",
            (token_hash(token), admin_id, csrf, now + SESSION_SECONDS),
        )
    name = store.rows("SELECT name FROM admins WHERE id = ?", (admin_id,))[0][0]
    return token, Session(admin_id, str(name), csrf)


def find_session(store: Store, token: str, now: float) -> Session | None:
    """The session a cookie's token opens, if it has not expired."""
    rows = store.rows(
        "SELECT s.admin_id, a.name, s.csrf FROM admin_sessions s JOIN admins a "
        "ON a.id = s.admin_id WHERE s.token_hash = ? AND s.expires > ?",
        (token_hash(token), now),
    )
    if not rows:
        return None
    admin_id, name, csrf = rows[0]
    return Session(int(str(admin_id)), str(name), str(csrf))


def close_session(store: Store, token: str) -> None:
    """Log out: the token opens nothing any more."""
    store.write("DELETE FROM admin_sessions WHERE token_hash = ?", (token_hash(token),))
