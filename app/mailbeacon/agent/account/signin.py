"""The running agent's sign-in: one token source for SMTP and IMAP, and "Sign in again".

:class:`AgentSignIn` is the :class:`~mailbeacon.agent.account.bearer.BearerSource` the
outbox's upstream, the reply watcher and the Sent cleanup share when
``account.auth = oauth2``. It learns the provider's endpoints on first use (so the
agent starts while the provider is unreachable; mail waits), refreshes through
:class:`~mailbeacon.agent.account.tokens.AccessTokens`, and when the provider refuses
the stored sign-in it tells the rep once (``on_required``) and watches the keyring
until a new sign-in arrives (from ``mailbeacon account setup --oauth`` or the tray),
then ``on_restored`` lets the outbox retry at once. See docs/promises.md, "No mail lost".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import httpx

from mailbeacon.agent.account import oauth
from mailbeacon.agent.account.bearer import SignInRequired
from mailbeacon.agent.account.oauth import OAuthClient, OAuthError, ProviderUnavailable
from mailbeacon.agent.account.tokens import AccessTokens
from mailbeacon.agent.settings.secrets import Secret, SecretStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.language import Phrase, mark, said

log = logging.getLogger(__name__)

DEFAULT_SCOPES = ("openid", "email", "offline_access")
WATCH_SECONDS = 3.0  # while a sign-in is needed: how often the keyring is looked at


class AgentSignIn:
    """Access tokens for the account in the settings; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        secrets: SecretStore,
        http: httpx.AsyncClient,
        *,
        on_required: Callable[[str], None],
        on_restored: Callable[[], None],
        watch_seconds: float = WATCH_SECONDS,
    ) -> None:
        self._settings = settings
        self._secrets = secrets
        self._http = http
        self._on_required = on_required
        self._on_restored = on_restored
        self._watch_seconds = watch_seconds
        self._tokens: AccessTokens | None = None
        self._lock = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None

    @property
    def user(self) -> str:
        """The rep's email address (the login name at both servers)."""
        return self._settings.account.email or self._settings.upstream.user

    async def token(self) -> str:
        """A current access token; SignInRequired (told to the rep once) when refused."""
        try:
            tokens = await self._access_tokens()
            return await tokens.token()
        except SignInRequired as exc:
            self._required(said(exc))
            raise

    def invalidate(self, token: str) -> None:
        """A server refused ``token``: the next :meth:`token` refreshes."""
        if self._tokens is not None:
            self._tokens.invalidate(token)

    async def close(self) -> None:
        """Stop watching the keyring."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch

    async def _access_tokens(self) -> AccessTokens:
        async with self._lock:
            if self._tokens is None:
                self._tokens = AccessTokens(self.user, await self._client(), self._secrets)
            return self._tokens

    async def _client(self) -> OAuthClient:
        issuer = self._settings.oauth.issuer
        if not issuer or not self._settings.oauth.client_id:
            raise SignInRequired(
                Phrase(
                    mark(
                        "Sign in again: no sign-in provider or client ID is set (Settings → "
                        "Account)."
                    )
                ),
                reason=Phrase(
                    mark("no sign-in provider or client ID is set (Settings → Account)")
                ),
            )
        try:
            metadata = await oauth.discover(issuer, self._http)
        except ProviderUnavailable:
            raise  # a ConnectionError: the provider is away, mail waits and is retried
        except OAuthError as exc:
            # A wrong issuer or a provider that refuses PKCE: only the set-up can fix it.
            raise SignInRequired(
                Phrase(mark("Sign in again: {reason}"), reason=said(exc)), reason=said(exc)
            ) from exc
        return OAuthClient(
            metadata,
            self._settings.oauth.client_id,
            self._http,
            scopes=tuple(self._settings.oauth.scopes.split()) or DEFAULT_SCOPES,
            client_secret=self._secrets.get(Secret.OAUTH_CLIENT_SECRET),
        )

    def _required(self, message: str) -> None:
        if self._watch is not None and not self._watch.done():
            return  # told already; still waiting for the new sign-in
        log.warning("sign-in needed: %s", message)
        self._on_required(message)
        stale = self._secrets.get(Secret.OAUTH_REFRESH_TOKEN)
        self._watch = asyncio.get_running_loop().create_task(self._await_new_sign_in(stale))

    async def _await_new_sign_in(self, stale: str | None) -> None:
        while True:
            await asyncio.sleep(self._watch_seconds)
            current = await asyncio.to_thread(self._secrets.get, Secret.OAUTH_REFRESH_TOKEN)
            if current is not None and current != stale:
                log.info("a new sign-in is in the keyring; sending what waited")
                async with self._lock:
                    self._tokens = None  # the new refresh token, fresh access token
                self._on_restored()
                return
