"""Secrets of one profile in the OS keyring, never in a file.

Each profile has its own keyring namespace (``profile.keyring_service``), so two
profiles never share a secret. For headless use a few secrets can come from the
environment instead (docs/interfaces.md): ``MAILBEACON_UPSTREAM_PASSWORD``,
``MAILBEACON_IMAP_PASSWORD``, and the upstream login ``MAILBEACON_UPSTREAM_USER``.
The environment is given to the constructor; it wins over the keyring for that run
and is never written to it.

If the OS keyring is missing or locked, every call raises ``SecretStoreUnavailable``
with what to do about it; there is no fallback to a plain file.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets as random_secrets
from collections.abc import Mapping
from enum import StrEnum

import keyring
from keyring.backend import KeyringBackend
from keyring.errors import KeyringError, NoKeyringError

from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.language import Phrase, mark

log = logging.getLogger(__name__)

ENV_UPSTREAM_USER = "MAILBEACON_UPSTREAM_USER"
ENV_UPSTREAM_PASSWORD = "MAILBEACON_UPSTREAM_PASSWORD"  # noqa: S105 - a variable name
ENV_IMAP_PASSWORD = "MAILBEACON_IMAP_PASSWORD"  # noqa: S105 - a variable name


class Secret(StrEnum):
    """The names of the secrets a profile keeps."""

    RELAY_PASSWORD = "relay_password"  # noqa: S105 - a name, not a password
    UPSTREAM_PASSWORD = "upstream_password"  # noqa: S105
    IMAP_PASSWORD = "imap_password"  # noqa: S105
    API_TOKEN = "api_token"  # noqa: S105
    SIGNING_KEY = "signing_key"
    ENROLLMENT = "enrollment"
    OAUTH_REFRESH_TOKEN = "oauth_refresh_token"  # noqa: S105 - a name, not a token
    OAUTH_CLIENT_SECRET = "oauth_client_secret"  # noqa: S105
    SERVER_SECRET = "server_secret"  # noqa: S105 - the embedded server's signing secret


# Which environment variable may stand in for which secret.
ENV_OVERRIDES: dict[Secret, str] = {
    Secret.UPSTREAM_PASSWORD: ENV_UPSTREAM_PASSWORD,
    Secret.IMAP_PASSWORD: ENV_IMAP_PASSWORD,
}


class SecretStoreUnavailable(RuntimeError):
    """The OS keyring cannot be used; the message says how to fix it."""

    def __init__(self, action: str, cause: BaseException) -> None:
        problem = (
            Phrase(mark("no keyring service was found"))
            if isinstance(cause, NoKeyringError)
            else f"{type(cause).__name__}: {cause}"
        )
        # A phrase: the tray's no-keyring dialog says it in the rep's language.
        super().__init__(
            Phrase(
                mark(
                    "The OS keyring is unavailable ({problem}), so MailBeacon cannot {action}. "
                    "MailBeacon keeps passwords and keys only in the keyring, never in a file. "
                    "Install and unlock one (GNOME Keyring or KWallet on Linux, the login "
                    "keychain on macOS, Credential Manager on Windows) and try again. For "
                    "headless use, pass the upstream password in {upstream} and the IMAP "
                    "password in {imap}."
                ),
                problem=problem,
                action=action,
                upstream=ENV_UPSTREAM_PASSWORD,
                imap=ENV_IMAP_PASSWORD,
            )
        )


class SecretStore:
    """Get, set and delete one profile's secrets."""

    def __init__(
        self,
        service: str,
        environ: Mapping[str, str] | None = None,
        backend: KeyringBackend | None = None,
    ) -> None:
        """``service`` is the profile's keyring namespace; ``backend`` defaults to the
        keyring chosen at call time (``keyring.get_keyring()``)."""
        self.service = service
        self._environ: Mapping[str, str] = environ or {}
        self._backend = backend

    def _keyring(self) -> KeyringBackend:
        return self._backend if self._backend is not None else keyring.get_keyring()

    def _env(self, name: Secret) -> str | None:
        variable = ENV_OVERRIDES.get(name)
        value = self._environ.get(variable) if variable else None
        return value or None

    def get(self, name: Secret) -> str | None:
        """The secret (an environment override first), or None if it is not set."""
        override = self._env(name)
        if override is not None:
            return override
        try:
            value: str | None = self._keyring().get_password(self.service, str(name))
        except (KeyringError, OSError) as exc:
            log.info("keyring read of %s failed: %s", name, exc)
            raise SecretStoreUnavailable(
                Phrase(mark("read the {secret}"), secret=_label(name)), exc
            ) from exc
        return value

    def is_set(self, name: Secret) -> bool:
        """True if the secret has a value (from the environment or the keyring)."""
        return self.get(name) is not None

    def set(self, name: Secret, value: str) -> None:
        """Store the secret in the keyring."""
        if not value:
            raise ValueError(Phrase(mark("the {secret} must not be empty"), secret=_label(name)))
        try:
            self._keyring().set_password(self.service, str(name), value)
        except (KeyringError, OSError) as exc:
            log.info("keyring write of %s failed: %s", name, exc)
            raise SecretStoreUnavailable(
                Phrase(mark("store the {secret}"), secret=_label(name)), exc
            ) from exc

    def delete(self, name: Secret) -> bool:
        """Remove the secret from the keyring; False if it was not there."""
        try:
            backend = self._keyring()
            if backend.get_password(self.service, str(name)) is None:
                return False
            backend.delete_password(self.service, str(name))
        except (KeyringError, OSError) as exc:
            log.info("keyring delete of %s failed: %s", name, exc)
            raise SecretStoreUnavailable(
                Phrase(mark("delete the {secret}"), secret=_label(name)), exc
            ) from exc
        return True

    def ensure_relay_password(self) -> str:
        """The relay password, generated (and stored) on first use."""
        existing = self.get(Secret.RELAY_PASSWORD)
        if existing:
            return existing
        password = random_secrets.token_urlsafe(18)
        self.set(Secret.RELAY_PASSWORD, password)
        log.info("generated a new relay password for %s", self.service)
        return password

    def upstream_user(self, configured: str) -> str:
        """The upstream login: ``MAILBEACON_UPSTREAM_USER`` if set, else ``configured``."""
        return self._environ.get(ENV_UPSTREAM_USER) or configured

    def enrollment(self) -> Enrollment | None:
        """The stored enrollment, or None; a damaged one is logged and treated as absent."""
        text = self.get(Secret.ENROLLMENT)
        if text is None:
            return None
        try:
            return Enrollment.decode(text)
        except ValueError as exc:
            log.error("the stored enrollment key is damaged: %s", exc)
            return None

    def set_enrollment(self, enrollment: Enrollment) -> None:
        """Store an enrollment: the key itself, and its API token and signing key."""
        self.set(Secret.ENROLLMENT, enrollment.encode())
        self.set(Secret.API_TOKEN, enrollment.api_token)
        self.set(Secret.SIGNING_KEY, encode_key(enrollment.signing_key))

    def signing_key(self) -> bytes | None:
        """The signing key as bytes, or None if absent or damaged."""
        text = self.get(Secret.SIGNING_KEY)
        if text is None:
            return None
        try:
            return decode_key(text)
        except ValueError:
            log.error("the stored signing key is damaged")
            return None


def encode_key(raw: bytes) -> str:
    """Bytes as keyring text (URL-safe base64)."""
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_key(text: str) -> bytes:
    """The bytes of ``encode_key``; raises ValueError."""
    try:
        return base64.urlsafe_b64decode(text.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("not a key") from exc


_LABELS = {
    Secret.RELAY_PASSWORD: mark("relay password"),
    Secret.UPSTREAM_PASSWORD: mark("upstream password"),
    Secret.IMAP_PASSWORD: mark("imap password"),
    Secret.API_TOKEN: mark("api token"),
    Secret.SIGNING_KEY: mark("signing key"),
    Secret.ENROLLMENT: mark("enrollment"),
    Secret.OAUTH_REFRESH_TOKEN: mark("oauth refresh token"),
    Secret.OAUTH_CLIENT_SECRET: mark("oauth client secret"),
    Secret.SERVER_SECRET: mark("server secret"),
}


def _label(name: Secret) -> str:
    return Phrase(_LABELS[name]) if name in _LABELS else str(name).replace("_", " ")
