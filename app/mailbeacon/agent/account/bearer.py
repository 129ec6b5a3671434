"""Access tokens for SASL XOAUTH2 / OAUTHBEARER, as the SMTP and IMAP clients see them."""

from __future__ import annotations

from typing import Protocol


class SignInRequired(Exception):
    """The provider no longer accepts the stored sign-in: the rep must sign in again.

    Mail waits in the outbox meanwhile (a connection problem, never a bounce).
    ``str()`` is the whole sentence for the rep ("Sign in again to …: why");
    :attr:`reason` is the why alone, for a caller that words its own advice around
    it (the outbox, the mailbox) and would otherwise say "sign in again" twice.
    """

    def __init__(self, sentence: str = "", reason: str = "") -> None:
        super().__init__(sentence)
        self.reason = reason


class BearerSource(Protocol):
    """Hands out a current access token for ``user``; refreshes it when needed."""

    @property
    def user(self) -> str:
        """The login name the token is for (the rep's email address)."""
        ...

    async def token(self) -> str:
        """A token valid for a while yet; raises :class:`SignInRequired`."""
        ...

    def invalidate(self, token: str) -> None:
        """The server refused ``token``: the next :meth:`token` fetches a fresh one."""
        ...
