"""Server-wide settings kept in the store: the secret and the public URL."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from mailbeacon.server.config import ConfigError
from mailbeacon.server.store import Store

log = logging.getLogger(__name__)

SECRET_KEY = "secret"  # noqa: S105 - the meta key, not a secret
FINGERPRINT_KEY = "secret_fingerprint"
PUBLIC_URL_KEY = "public_url"


def fingerprint(secret: bytes) -> str:
    """A short public name for a secret (says whether two secrets match, reveals nothing)."""
    return hmac.new(secret, b"mailbeacon-secret-fingerprint", hashlib.sha256).hexdigest()[:16]


def serving_secret(store: Store, external: bytes | None) -> bytes:
    """The secret to serve with: ``external`` (file or environment) or the stored one.

    The stored secret is generated on first use, so every instance on one database
    shares it. The fingerprint of the secret in use is recorded for ``add-user``.
    """
    secret = external if external is not None else _stored_secret(store)
    new = fingerprint(secret)
    old = store.get_meta(FINGERPRINT_KEY)
    if old is not None and old != new:
        log.warning(
            "the server secret differs from the one this database was last served with: "
            "enrollment keys issued before no longer verify"
        )
    if old != new:
        store.set_meta(FINGERPRINT_KEY, new)
    return secret


def enrollment_secret(store: Store, external: bytes | None) -> bytes:
    """The secret ``add-user`` derives signing keys from; it must be the serving one."""
    secret = external if external is not None else _stored_secret(store)
    served = store.get_meta(FINGERPRINT_KEY)
    if served is not None and served != fingerprint(secret):
        raise ConfigError(
            "this database was last served with a different server secret (from --secret-file "
            "or MAILBEACON_SERVER_SECRET); give add-user the same secret, or the key it prints "
            "will not work"
        )
    return secret


def _stored_secret(store: Store) -> bytes:
    return store.setdefault_meta(SECRET_KEY, secrets.token_hex(32)).encode("ascii")


def public_url(store: Store, given: str | None) -> tuple[str | None, str]:
    """The URL to put in enrollment keys, and where it came from (for the operator)."""
    if given:
        return given.rstrip("/"), "--public-url"
    stored = store.get_meta(PUBLIC_URL_KEY)
    if stored:
        return stored, "the URL the server was last served with"
    return None, "none"
