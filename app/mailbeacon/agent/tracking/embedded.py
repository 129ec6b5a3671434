"""The embedded tracking server: the one place the agent reaches into ``mailbeacon.server``.

In the default set-up (``server.mode = embedded``) the tracking server runs inside the
agent's process, on the agent's loop. Everything else in the agent talks to a tracking
server only through its enrollment and the event stream, as it would to a team's
server; the import contract (``pyproject.toml``, ``[tool.importlinter]``) allows
``agent`` to import ``server`` here only. See docs/architecture.md, "The four layers".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from secrets import token_hex

from mailbeacon.agent.settings.secrets import Secret, SecretStore, SecretStoreUnavailable
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.server.config import ServerConfig
from mailbeacon.server.meta import SECRET_KEY
from mailbeacon.server.tracking_server import TrackingServer
from mailbeacon.server.users import UserAdmin

log = logging.getLogger(__name__)

REP = "rep"  # the embedded server's one user: this profile's rep


@dataclass(frozen=True, slots=True)
class EmbeddedOptions:
    """Where the embedded server keeps its data, listens, and what it puts into mail."""

    db_path: Path
    host: str
    port: int
    public_url: str | None
    truncate_ips: bool
    # A local TLS proxy or tunnel in front of the embedded server: its forwarded
    # address decides, so recipients behind it are not taken for the rep (rule 5).
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    self_address_minutes: float = 15.0
    click_token_max_days: int = 730
    secret: bytes | None = None  # from the keyring; None: the database keeps its own


class EmbeddedServer:
    """A tracking server running on this agent's loop, for this profile's one rep."""

    def __init__(self, options: EmbeddedOptions) -> None:
        self._server = TrackingServer(
            ServerConfig(
                db_path=options.db_path,
                host=options.host,
                port=options.port,
                public_url=options.public_url,
                truncate_ips=options.truncate_ips,
                trusted_proxies=options.trusted_proxies,
                self_address_minutes=options.self_address_minutes,
                click_token_max_days=options.click_token_max_days,
                secret=options.secret,
            )
        )

    async def start(self) -> None:
        """Listen; returns once the server answers."""
        await self._server.start()

    async def stop(self) -> None:
        """Stop listening and close the store."""
        await self._server.stop()

    async def enroll(
        self, stored: Enrollment | None, remember: Callable[[Enrollment], None]
    ) -> Enrollment:
        """The rep's enrollment: the stored user kept across a new port or public URL."""
        if stored is not None:
            # The same user across a new port or public URL: the tokens in mail already
            # sent still name this user, so their opens still reach this rep.
            kept = await self._server.reenroll(stored)
            if kept is not None:
                if kept != stored:
                    remember(kept)
                return kept
        # Not in the keyring (none, or it lost it): the profile's one user gets a new
        # API token, keeping its id and signing key, so opens of mail already sent
        # still reach this rep; a new user only for a new profile.
        renewed = await self._server.renew(REP)
        enrollment = renewed if renewed is not None else await self._server.add_user(REP)
        remember(enrollment)
        return enrollment


def database_secret(db_path: Path) -> bytes | None:
    """The secret an older installation's embedded server kept in its database."""
    if not db_path.exists():
        return None
    admin = UserAdmin(db_path)
    try:
        value = admin.get_meta(SECRET_KEY)
    finally:
        admin.close()
    return value.encode("ascii") if value else None


def forget_database_secret(db_path: Path) -> None:
    """Remove the secret from the database once the keyring holds it."""
    admin = UserAdmin(db_path)
    try:
        admin.take_secret()
    finally:
        admin.close()


def server_secret(secrets: SecretStore, db_path: Path) -> bytes | None:
    """The embedded server's secret, kept in the keyring like every other secret; an
    older installation's (in server.db) moves there. Without a keyring it stays in the
    server's own database, which only the rep's user can read (docs/promises.md)."""
    try:
        kept = secrets.get(Secret.SERVER_SECRET)
        if kept:
            return kept.encode("ascii")
        secret = database_secret(db_path) or token_hex(32).encode("ascii")
        secrets.set(Secret.SERVER_SECRET, secret.decode("ascii"))
    except SecretStoreUnavailable as exc:
        log.info("the embedded server keeps its secret in its database: %s", exc)
        return None
    if database_secret(db_path) is not None:
        forget_database_secret(db_path)  # only now that the keyring holds it
    return secret
