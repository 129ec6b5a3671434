"""Setting up the rep's mail account in one go: servers, sign-in, both servers tried, saved.

The flow a rep knows from Thunderbird (docs/rep-guide.md, "Your mail account"):
the email address → the servers (found by :mod:`discovery`, or typed by the rep) →
sign in (OAuth 2.0 in the browser or by code, or a password) → SMTP and IMAP are
both logged in to for real → only then is anything saved. A failure at any step is
one sentence for the rep (:class:`SetupError`) and leaves the profile as it was:
nothing half-saved. The URL settings (``upstream.url``, ``imap.url``) stay what is
stored underneath; the rep never types one.
"""

from __future__ import annotations

import logging
import webbrowser
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from urllib.parse import quote

import httpx

from mailbeacon.agent.account import oauth
from mailbeacon.agent.account.model import (
    AuthMethod,
    Discovered,
    Security,
    ServerSetting,
    Source,
)
from mailbeacon.agent.account.oauth import DeviceCode, OAuthClient, OAuthError, TokenSet
from mailbeacon.agent.mailbox.check import check_imap
from mailbeacon.agent.sending.check import UpstreamProbe, check_upstream
from mailbeacon.agent.settings.errors import SettingError
from mailbeacon.agent.settings.secrets import Secret, SecretStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.language import ENGLISH, Language, in_language, said

log = logging.getLogger(__name__)

DEFAULT_SCOPES = ("openid", "email", "offline_access")
CHECK_SECONDS = 20.0

Discover = Callable[[str], Awaitable[Discovered]]


class SetupError(Exception):
    """The account cannot be set up; the message says what the rep can do."""


@dataclass(frozen=True, slots=True)
class AccountRequest:
    """What the rep gave: the address, and optionally the servers and how to sign in."""

    email: str
    name: str = ""
    method: AuthMethod | None = None  # None: sign-in when offered and configured, else password
    password: str | None = None
    smtp: ServerSetting | None = None
    imap: ServerSetting | None = None
    device: bool = False  # OAuth by code on another device (headless machines)
    login: str = ""  # the password login name at both servers, if not the email address

    @property
    def user(self) -> str:
        """The login name the servers are signed in to with."""
        return (self.login or self.email).strip()


@dataclass(frozen=True, slots=True)
class AccountResult:
    """What was set up, with what each server said."""

    servers: Discovered
    method: AuthMethod
    smtp_said: str
    imap_said: str | None


class StaticBearer:
    """The access token of a sign-in that is not saved yet (used only while checking)."""

    def __init__(self, user: str, tokens: TokenSet) -> None:
        self._user = user
        self._token = tokens.access_token

    @property
    def user(self) -> str:
        """The login name (the rep's email address)."""
        return self._user

    async def token(self) -> str:
        """The sign-in's access token."""
        return self._token

    def invalidate(self, token: str) -> None:
        """Nothing to refresh: a refused fresh token is a failed check."""


class AccountSetup:
    """Runs the flow for one profile's settings and keyring."""

    def __init__(
        self,
        settings: Settings,
        secrets: SecretStore,
        http: httpx.AsyncClient,
        discover: Discover,
        *,
        opener: Callable[[str], bool] | None = None,
        show_code: Callable[[DeviceCode], None] | None = None,
        save: Callable[[Settings], None],
        tr: Language = ENGLISH,
    ) -> None:
        """``save`` writes the settings file (atomically); ``opener`` shows a URL;
        ``tr`` words the refusals for the rep (the command line keeps English)."""
        self._tr = tr
        self._settings = settings
        self._secrets = secrets
        self._http = http
        self._discover = discover
        self._opener = opener
        self._show_code = show_code
        self._save = save

    async def servers(self, request: AccountRequest) -> Discovered:
        """The servers to use: the rep's own where given, else what discovery found."""
        email = request.email.strip()
        if request.smtp is not None:
            return _manual(email, request.smtp, request.imap)
        found = await self._discover(email)
        return replace(
            found,
            smtp=request.smtp or found.smtp,
            imap=request.imap or found.imap,
        )

    async def run(self, request: AccountRequest) -> AccountResult:
        """Find, sign in, try both servers, then save; :class:`SetupError` on any failure."""
        servers = await self.servers(request)
        method = self._method(request, servers)
        if method is AuthMethod.OAUTH2:
            tokens = await self._sign_in(servers, request)
            bearer: StaticBearer | None = StaticBearer(servers.email, tokens)
            password = ""
        else:
            tokens, bearer = None, None
            password = request.password or ""
            if not password:
                raise SetupError(
                    self._tr.t(
                        "Type the password (or app password) for {email}.", email=servers.email
                    )
                )
        login = servers.email if method is AuthMethod.OAUTH2 else request.user
        smtp_said = await self._try_smtp(servers, login, password, bearer)
        imap_said = await self._try_imap(servers, login, password, bearer)
        self._keep(request, servers, method, password, tokens)
        log.info("account %s set up (%s, %s)", servers.email, servers.source, method)
        return AccountResult(servers, method, smtp_said, imap_said)

    # ------------------------------------------------------------ steps

    def _method(self, request: AccountRequest, servers: Discovered) -> AuthMethod:
        if request.method is not None:
            return request.method
        if request.password:
            return AuthMethod.PASSWORD
        can_sign_in = AuthMethod.OAUTH2 in servers.auth and self._settings.oauth.client_id
        return AuthMethod.OAUTH2 if can_sign_in else AuthMethod.PASSWORD

    def _client_for(self, metadata: oauth.ProviderMetadata, servers: Discovered) -> OAuthClient:
        client_id = self._settings.oauth.client_id
        scopes = tuple(self._settings.oauth.scopes.split()) or servers.scopes or DEFAULT_SCOPES
        return OAuthClient(
            metadata,
            client_id,
            self._http,
            scopes=scopes,
            client_secret=self._secrets.get(Secret.OAUTH_CLIENT_SECRET),
            opener=self._opener or webbrowser.open,
            tr=self._tr,
        )

    async def _sign_in(self, servers: Discovered, request: AccountRequest) -> TokenSet:
        issuer = self._settings.oauth.issuer or servers.issuer
        if not issuer:
            raise SetupError(
                self._tr.t(
                    "{email} has no sign-in provider we know: set oauth.issuer, or use a password.",
                    email=servers.email,
                )
            )
        if not self._settings.oauth.client_id:
            raise SetupError(
                self._tr.t(
                    "Sign-in needs the client ID your administrator registered for "
                    "MailBeacon (Settings → Account, or `mailbeacon config set "
                    "oauth.client_id ID`)."
                )
            )
        try:
            client = self._client_for(await oauth.discover(issuer, self._http), servers)
            if request.device:
                return await client.sign_in_with_code(self._show_code or _ignore)
            return await client.sign_in_with_browser(login_hint=servers.email)
        except OAuthError as exc:
            raise SetupError(in_language(said(exc), self._tr)) from exc

    async def _try_smtp(
        self, servers: Discovered, login: str, password: str, bearer: StaticBearer | None
    ) -> str:
        probe = UpstreamProbe(
            url=smtp_url(servers.smtp),
            user=login,
            password=password or None,
            allow_plain=self._settings.upstream.allow_plain,
            bearer=bearer,
        )
        result = await check_upstream(probe, CHECK_SECONDS, self._tr)
        if not result.ok:
            raise SetupError(result.message)
        return result.message

    async def _try_imap(
        self, servers: Discovered, login: str, password: str, bearer: StaticBearer | None
    ) -> str | None:
        if servers.imap is None:
            return None
        result = await check_imap(
            imap_url(servers.imap, login),
            password,
            self._settings.imap.allow_plain,
            timeout=CHECK_SECONDS,
            bearer=bearer,
            tr=self._tr,
        )
        if not result.ok:
            raise SetupError(result.message)
        return result.message

    def _keep(
        self,
        request: AccountRequest,
        servers: Discovered,
        method: AuthMethod,
        password: str,
        tokens: TokenSet | None,
    ) -> None:
        """Secrets first, then the settings file; a failed save takes the secrets back."""
        trial = self._settings.copy()
        try:
            _apply(trial, request, servers, method)
        except SettingError as exc:
            raise SetupError(in_language(said(exc), self._tr)) from exc
        before = {name: self._secrets.get(name) for name in _ACCOUNT_SECRETS}
        try:
            for name, value in _secrets_for(method, password, tokens).items():
                if value is None:
                    self._secrets.delete(name)
                else:
                    self._secrets.set(name, value)
            self._save(trial)
        except Exception:
            _restore(self._secrets, before)
            raise
        for section in ("upstream", "imap", "account", "oauth"):
            setattr(self._settings, section, getattr(trial, section))


_ACCOUNT_SECRETS = (Secret.UPSTREAM_PASSWORD, Secret.IMAP_PASSWORD, Secret.OAUTH_REFRESH_TOKEN)


def _secrets_for(
    method: AuthMethod, password: str, tokens: TokenSet | None
) -> dict[Secret, str | None]:
    if method is AuthMethod.OAUTH2:
        refresh = tokens.refresh_token if tokens else None
        return {
            Secret.OAUTH_REFRESH_TOKEN: refresh,
            Secret.UPSTREAM_PASSWORD: None,
            Secret.IMAP_PASSWORD: None,
        }
    return {
        Secret.UPSTREAM_PASSWORD: password,
        Secret.IMAP_PASSWORD: password,
        Secret.OAUTH_REFRESH_TOKEN: None,
    }


def _restore(secrets: SecretStore, before: dict[Secret, str | None]) -> None:
    for name, value in before.items():
        if value is None:
            secrets.delete(name)
        else:
            secrets.set(name, value)


def _apply(
    settings: Settings, request: AccountRequest, servers: Discovered, method: AuthMethod
) -> None:
    settings.set("account.email", servers.email)
    if request.name:
        settings.set("account.name", request.name)
    settings.set("account.auth", str(method))
    login = servers.email if method is AuthMethod.OAUTH2 else request.user
    settings.set("upstream.url", smtp_url(servers.smtp))
    settings.set("upstream.user", login)
    settings.set("imap.url", imap_url(servers.imap, login) if servers.imap else "")
    if method is AuthMethod.OAUTH2 and servers.issuer and not settings.oauth.issuer:
        settings.set("oauth.issuer", servers.issuer)
    if method is AuthMethod.OAUTH2 and servers.scopes and not settings.oauth.scopes:
        settings.set("oauth.scopes", " ".join(servers.scopes))


def smtp_url(server: ServerSetting) -> str:
    """The ``upstream.url`` for a server."""
    scheme = {Security.TLS: "smtps", Security.STARTTLS: "smtp+starttls", Security.NONE: "smtp"}
    return f"{scheme[server.security]}://{server.host}:{server.port}"


def imap_url(server: ServerSetting, user: str) -> str:
    """The ``imap.url`` for a server and login name (the user name inside the URL)."""
    scheme = {Security.TLS: "imaps", Security.STARTTLS: "imap+starttls", Security.NONE: "imap"}
    return f"{scheme[server.security]}://{quote(user, safe='')}@{server.host}:{server.port}"


def _manual(email: str, smtp: ServerSetting, imap: ServerSetting | None) -> Discovered:
    return Discovered(
        email=email,
        provider=None,
        source=Source.MANUAL,
        smtp=smtp,
        imap=imap,
        auth=(AuthMethod.PASSWORD, AuthMethod.OAUTH2),
    )


def _ignore(_code: DeviceCode) -> None:
    """No one to show the code to."""
