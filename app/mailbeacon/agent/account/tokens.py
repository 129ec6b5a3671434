"""The rep's access tokens for SASL XOAUTH2 / OAUTHBEARER: :class:`AccessTokens`.

Where each token lives:

* the **refresh token** only in the OS keyring (``Secret.OAUTH_REFRESH_TOKEN``), never
  in a file or a log line. A provider that rotates refresh tokens (RFC 9700, section
  4.14) makes the old one worthless on first use, so a new one replaces it in the
  keyring before anything else happens;
* the **access token** only in memory. It is refreshed a margin before it expires,
  and once more after :meth:`AccessTokens.invalidate` (a server refused it).

One ``asyncio.Lock`` around the refresh: the outbox and the IMAP watcher asking at the
same moment share one refresh. Two refreshes with one rotating refresh token would
look like a stolen token to the provider, which then revokes the whole sign-in.

A refused refresh token means only the rep can help: :class:`SignInRequired` with
"Sign in again to <provider>: <why>". A provider that does not answer is not that:
``ProviderUnavailable`` (a ``ConnectionError``) passes through, and mail waits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mailbeacon.agent.account.bearer import SignInRequired
from mailbeacon.agent.account.oauth import (
    InvalidGrant,
    OAuthClient,
    OAuthError,
    ProviderUnavailable,
    TokenSet,
)
from mailbeacon.agent.settings.secrets import Secret, SecretStore
from mailbeacon.core.language import Phrase, mark, said

log = logging.getLogger(__name__)

MARGIN_SECONDS = 60.0  # refresh this long before expiry: a slow SMTP dialogue still fits
ASSUMED_LIFETIME = 600.0  # a provider that names no expires_in (RFC 6749 leaves it optional)


@dataclass(frozen=True, slots=True)
class _Current:
    value: str = field(repr=False)
    refresh_at: float


class AccessTokens:
    """A :class:`~mailbeacon.agent.account.bearer.BearerSource` backed by OAuth refresh."""

    def __init__(
        self,
        user: str,
        client: OAuthClient,
        secrets: SecretStore,
        *,
        provider: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        margin: float = MARGIN_SECONDS,
    ) -> None:
        """``provider`` names the provider to the rep (default: its issuer URL)."""
        self._user = user
        self._client = client
        self._secrets = secrets
        self._provider = provider or client.issuer
        self._clock = clock
        self._margin = margin
        self._current: _Current | None = None
        self._lock = asyncio.Lock()

    @property
    def user(self) -> str:
        """The login name the token is for (the rep's email address)."""
        return self._user

    def is_signed_in(self) -> bool:
        """True while the keyring holds a refresh token for this profile."""
        return self._secrets.is_set(Secret.OAUTH_REFRESH_TOKEN)

    def accept(self, tokens: TokenSet) -> None:
        """Keep the tokens of a completed sign-in: refresh token to the keyring."""
        if tokens.refresh_token:
            self._secrets.set(Secret.OAUTH_REFRESH_TOKEN, tokens.refresh_token)
        else:
            log.info("%s gave no refresh token: the sign-in lasts one access token", self._provider)
        self._keep(tokens)

    async def token(self) -> str:
        """A current access token; refreshes when it is close to expiry or was refused."""
        async with self._lock:
            current = self._current
            if current is not None and self._clock() < current.refresh_at:
                return current.value
            return await self._refresh()

    def invalidate(self, token: str) -> None:
        """The server refused ``token``: the next :meth:`token` refreshes.

        Only the token that was refused is dropped: callers that saw the same refusal
        while another already refreshed do not cause a second refresh.
        """
        if self._current is not None and self._current.value == token:
            log.info("a server refused the access token for %s; refreshing", self._user)
            self._current = None

    async def sign_out(self) -> bool:
        """Revoke the refresh token where the provider offers it, and forget it.

        Returns True if the provider revoked it. Forgotten here even if the provider
        could not be reached: the rep asked for MailBeacon to hold no sign-in.
        """
        refresh_token = self._secrets.get(Secret.OAUTH_REFRESH_TOKEN)
        self._current = None
        revoked = False
        try:
            if refresh_token is not None:
                revoked = await self._client.revoke(refresh_token)
        except OAuthError as exc:
            log.warning("could not revoke the sign-in at %s: %s", self._provider, exc)
        finally:
            self._secrets.delete(Secret.OAUTH_REFRESH_TOKEN)
        return revoked

    async def _refresh(self) -> str:
        refresh_token = self._secrets.get(Secret.OAUTH_REFRESH_TOKEN)
        if refresh_token is None:
            raise SignInRequired(
                Phrase(
                    mark("Sign in again to {provider}: MailBeacon holds no sign-in for {user}."),
                    provider=self._provider,
                    user=self._user,
                ),
                reason=Phrase(mark("MailBeacon holds no sign-in for {user}"), user=self._user),
            )
        try:
            tokens = await self._client.refresh(refresh_token)
        except ProviderUnavailable:
            raise
        except InvalidGrant as exc:
            # Dead for good: keeping it would only be refused again.
            self._secrets.delete(Secret.OAUTH_REFRESH_TOKEN)
            raise self._sign_in_required(exc) from None
        except OAuthError as exc:
            raise self._sign_in_required(exc) from None
        if tokens.refresh_token and tokens.refresh_token != refresh_token:
            self._secrets.set(Secret.OAUTH_REFRESH_TOKEN, tokens.refresh_token)
        log.info("refreshed the access token for %s at %s", self._user, self._provider)
        return self._keep(tokens)

    def _sign_in_required(self, exc: OAuthError) -> SignInRequired:
        log.warning("the sign-in of %s at %s needs renewing: %s", self._user, self._provider, exc)
        return SignInRequired(
            Phrase(
                mark("Sign in again to {provider}: {reason}"),
                provider=self._provider,
                reason=said(exc),
            ),
            reason=said(exc),
        )

    def _keep(self, tokens: TokenSet) -> str:
        lifetime = tokens.expires_in if tokens.expires_in is not None else ASSUMED_LIFETIME
        # A short-lived token (minutes) would otherwise be refreshed on every use.
        margin = min(self._margin, lifetime / 2)
        self._current = _Current(tokens.access_token, self._clock() + lifetime - margin)
        return tokens.access_token
