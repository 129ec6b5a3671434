"""One logged-in session on the rep's IMAP account, and what its failures mean for the rep.

The reply watcher, the Sent cleanup and the settings dialog's "Test connection"
all open the account the same way: refuse to send the password unencrypted to
another computer (unless the rep allowed it), read the password from the
keyring in a worker thread (a locked keyring blocks), connect, log in. A
session that ends normally says LOGOUT first; one that ends by an exception
(the server may be gone) or is cancelled only closes the socket.
:func:`describe_failure` turns what ended a session into one sentence for the
rep, the same for every caller.

An account with a bearer source logs in with an OAuth access token instead of
the password (XOAUTH2 / OAUTHBEARER): a refused token is invalidated and a
fresh one tried once; a sign-in the provider no longer accepts asks the rep to
sign in again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum

from mailbeacon.agent.account.bearer import BearerSource, SignInRequired
from mailbeacon.agent.mailbox.imap_client import (
    AuthenticationFailed,
    ClientStats,
    ConnectionClosed,
    ImapClient,
    ImapError,
    TokenRefused,
)
from mailbeacon.agent.settings.errors import SettingError
from mailbeacon.agent.settings.mail_urls import MailServerUrl, is_loopback, parse_mail_url
from mailbeacon.core import sasl
from mailbeacon.core.language import Phrase, mark, said

log = logging.getLogger(__name__)


class CannotLogIn(Exception):
    """Not a server problem: plain IMAP refused, or the password cannot be read."""


@dataclass(frozen=True, slots=True)
class ImapAccount:
    """Where and as whom to log in; ``password`` is a keyring read (blocking).

    With ``bearer`` the login is by access token as ``bearer.user``, and
    ``password`` is not read.
    """

    url: MailServerUrl
    password: Callable[[], str | None]
    allow_plain: bool = False
    ssl_context: ssl.SSLContext | None = None
    connect_seconds: float = 30.0
    bearer: BearerSource | None = None

    @property
    def plain_refused(self) -> bool:
        """The password would cross the network unencrypted, and the rep did not allow it."""
        return plain_refused(self.url, self.allow_plain)


def plain_refused(url: MailServerUrl, allow_plain: bool) -> bool:
    """Plain IMAP to another computer, not allowed: the password would cross unencrypted."""
    return url.plain and not (allow_plain or is_loopback(url.host))


def account_url(text: str) -> MailServerUrl:
    """The ``imap.url`` setting parsed; SettingError when it cannot be used (no user name)."""
    url = parse_mail_url(text, "imap")
    if not url.user:
        raise SettingError(
            Phrase(
                mark("put the IMAP user name in the URL, like imaps://you@{host}"), host=url.host
            )
        )
    return url


async def read_password(account: ImapAccount) -> str:
    """The password, after the plain-text check; raises CannotLogIn or AuthenticationFailed."""
    if account.plain_refused:
        raise CannotLogIn(
            Phrase(
                mark(
                    "{host} would receive your password unencrypted; use imaps:// or "
                    "imap+starttls://, or set imap.allow_plain"
                ),
                host=account.url.host,
            )
        )
    try:
        password = await asyncio.to_thread(account.password)
    except Exception as exc:  # e.g. a locked keyring; its message says what to do
        raise CannotLogIn(
            Phrase(mark("the IMAP password cannot be read: {error}"), error=said(exc))
        ) from exc
    if not password:
        raise AuthenticationFailed("no IMAP password is set")
    return password


@contextlib.asynccontextmanager
async def imap_session(
    account: ImapAccount, stats: ClientStats | None = None
) -> AsyncIterator[ImapClient]:
    """A client logged in to ``account``; ``stats`` counts its commands (shared across
    sessions when given)."""
    password = None if account.bearer is not None else await read_password(account)
    if account.bearer is not None and account.plain_refused:
        raise CannotLogIn(
            Phrase(
                mark(
                    "{host} would receive your sign-in token unencrypted; use imaps:// or "
                    "imap+starttls://, or set imap.allow_plain"
                ),
                host=account.url.host,
            )
        )
    url = account.url
    client = await ImapClient.connect(
        url.host, url.port, url.security, account.ssl_context, account.connect_seconds
    )
    if stats is not None:
        client.stats = stats
    try:
        if account.bearer is not None:
            await log_in_with_token(client, account.bearer, url, account.connect_seconds)
        else:
            await client.login(url.user, password or "")
        yield client
        await client.logout()
    finally:
        await client.close()  # also when cancelled during LOGOUT (a stop)


async def log_in_with_token(
    client: ImapClient, source: BearerSource, url: MailServerUrl, time_limit: float
) -> None:
    """Log in with ``source``'s token; a refused token is invalidated and a fresh one
    tried once. Raises CannotLogIn (sign in again), TokenRefused or ImapError."""
    mechanism = sasl.choose_mechanism(
        c.removeprefix("AUTH=") for c in client.capabilities if c.startswith("AUTH=")
    )
    if mechanism is None:
        raise CannotLogIn(
            Phrase(
                mark(
                    "{host} does not offer a sign-in with a token (XOAUTH2 or OAUTHBEARER); "
                    "use a password for this server instead"
                ),
                host=url.host,
            )
        )
    for attempt in (1, 2):
        token = await _token(source, time_limit)
        try:
            await client.authenticate_bearer(source.user, token, mechanism, url.host, url.port)
            return
        except ValueError as exc:  # the source handed out something no token can be
            raise CannotLogIn(
                Phrase(
                    mark(
                        "the sign-in for {user} cannot be used ({error}); sign in again in Settings"
                    ),
                    user=source.user,
                    error=str(exc),
                )
            ) from None
        except TokenRefused as exc:
            # Expired or revoked: the source fetches a fresh one next time.
            source.invalidate(token)
            log.warning(
                "%s refused the %s token for %s (attempt %d of 2): %s",
                url.host, mechanism, source.user, attempt, exc.refusal.describe(),
            )  # fmt: skip
            if attempt == 2:
                raise


async def _token(source: BearerSource, time_limit: float) -> str:
    try:
        async with asyncio.timeout(time_limit):
            return await source.token()
    except SignInRequired as exc:
        raise CannotLogIn(sign_in_again_message(source.user, exc)) from None
    except TimeoutError:
        # Not the rep's to fix: an ImapError, so the caller retries soon.
        raise ImapError(
            Phrase(
                mark(
                    "no sign-in token for {user} within {seconds}s (the sign-in provider did "
                    "not answer)"
                ),
                user=source.user,
                seconds=f"{time_limit:g}",
            )
        ) from None


def sign_in_again_message(user: str, exc: SignInRequired) -> str:
    """What the rep reads when the provider no longer accepts the saved sign-in."""
    if exc.reason:
        return Phrase(
            mark(
                "Sign in again with the account {user} in Settings: the saved sign-in is no "
                "longer accepted ({reason})"
            ),
            user=user,
            reason=exc.reason,  # the why alone: this sentence already says sign in again
        )
    return Phrase(
        mark(
            "Sign in again with the account {user} in Settings: the saved sign-in is no "
            "longer accepted"
        ),
        user=user,
    )



# ---------------------------------------------------------------- failures


class Trouble(StrEnum):
    """What ended a session, as far as the rep is concerned."""

    WRONG_PASSWORD = "wrong_password"  # noqa: S105 - a kind of trouble
    CANNOT_LOG_IN = "cannot_log_in"
    INSECURE = "insecure"  # the TLS handshake failed
    UNREACHABLE = "unreachable"
    REFUSED = "refused"  # the server said NO or BAD
    BUG = "bug"

    @property
    def needs_the_rep(self) -> bool:
        """Retrying soon cannot help: wait long (a wrong password must not lock the
        account) or until the rep changes the settings."""
        return self in (Trouble.WRONG_PASSWORD, Trouble.CANNOT_LOG_IN)


@dataclass(frozen=True, slots=True)
class SessionFailure:
    """Why a session ended, and a sentence for the rep."""

    trouble: Trouble
    detail: str


def describe_failure(exc: Exception, url: MailServerUrl) -> SessionFailure:
    """What ``exc`` (it ended a session with ``url``) means, for the rep."""
    # Order matters: these are subclasses of the ones after them.
    if isinstance(exc, AuthenticationFailed):
        return SessionFailure(Trouble.WRONG_PASSWORD, wrong_password_message(exc))
    if isinstance(exc, CannotLogIn):
        return SessionFailure(Trouble.CANNOT_LOG_IN, said(exc))
    if isinstance(exc, ssl.SSLError):
        return SessionFailure(
            Trouble.INSECURE, Phrase(mark("secure connection failed: {error}"), error=str(exc))
        )
    if isinstance(exc, OSError | TimeoutError | ConnectionClosed):
        return SessionFailure(Trouble.UNREACHABLE, unreachable_message(url, exc))
    if isinstance(exc, ImapError):
        return SessionFailure(Trouble.REFUSED, said(exc))
    return SessionFailure(Trouble.BUG, Phrase(mark("internal error: {error}"), error=str(exc)))


def wrong_password_message(exc: Exception) -> str:
    """What the rep reads when the IMAP login failed."""
    if isinstance(exc, TokenRefused):  # a fresh token too: the sign-in itself is wrong
        return Phrase(
            mark(
                "the mail server refused the sign-in ({reason}); sign in again in Settings "
                "with the account this mailbox belongs to"
            ),
            reason=exc.refusal.describe(),
        )
    if "no IMAP password" in str(exc):
        return Phrase(mark("no IMAP password is set; enter it in Settings (imap.password)"))
    return Phrase(
        mark("the mail server refused the IMAP user name or password ({reply})"), reply=str(exc)
    )


def unreachable_message(url: MailServerUrl, exc: BaseException) -> str:
    """What the rep reads when the IMAP server cannot be reached."""
    why = said(exc) or type(exc).__name__
    return Phrase(
        mark("cannot reach the mail server {where} ({reason})"),
        where=f"{url.host}:{url.port}",
        reason=why,
    )
