"""Tokens from the test OpenID provider (tests/helpers/oidc.py) without a browser.

The device flow (RFC 8628), walked with httpx the way a person would in a browser:
ask for a device code, open the verification page, type the user code, confirm,
sign in, allow; then the token endpoint hands out the access and refresh tokens.

    with running_provider() as provider:
        tokens = sign_in(provider)                       # alice@example.test
        tokens = sign_in(provider, "bob@example.test")   # another of provider.users
        fresh = refresh(provider, tokens.refresh_token)
        revoke(provider, fresh.access_token)

Blocking (httpx.Client): call through ``asyncio.to_thread`` from async tests.

:class:`ProviderTokens` is a BearerSource (``agent/account/bearer.py``) on top:
it signs in on first use, refreshes after ``invalidate``, and records what it
handed out, so tests can see the invalidate-and-retry-once rule at work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx

from mailbeacon.agent.account.bearer import SignInRequired
from tests.helpers.oidc import CLIENT_ID, USER, Provider

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SCOPE = "openid email offline_access mail"
TIMEOUT = 10.0


@dataclass(frozen=True)
class Tokens:
    """What the token endpoint handed out."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int


def sign_in(provider: Provider, user: str = USER, scope: str = SCOPE) -> Tokens:
    """Sign ``user`` in through the device flow; their password is ``provider.users[user]``."""
    with httpx.Client(base_url=provider.issuer, timeout=TIMEOUT, follow_redirects=True) as web:
        start = _ok(web.post("/device/auth", data={"client_id": CLIENT_ID, "scope": scope}))
        page = web.get(start["verification_uri"])
        page = _submit(web, page, "op.deviceInputForm", user_code=start["user_code"])
        page = _submit(web, page, "op.deviceConfirmForm")
        page = _submit(web, page, "login", login=user, password=provider.users[user])
        page = _submit(web, page, "consent")
        if page.status_code != 200:
            raise RuntimeError(f"the device sign-in did not finish: {page.status_code}")
        # The person has allowed it: the first poll answers (no waiting needed).
        answer = web.post(
            "/token",
            data={"grant_type": DEVICE_GRANT, "device_code": start["device_code"],
                  "client_id": CLIENT_ID},
        )  # fmt: skip
        return _tokens(_ok(answer))


def refresh(provider: Provider, refresh_token: str) -> Tokens:
    """New tokens for a refresh token (the provider may rotate the refresh token)."""
    with httpx.Client(base_url=provider.issuer, timeout=TIMEOUT) as web:
        answer = web.post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                  "client_id": CLIENT_ID},
        )  # fmt: skip
        tokens = _tokens(_ok(answer))
    return tokens


def revoke(provider: Provider, token: str) -> None:
    """Revoke an access or refresh token (RFC 7009): introspection then says inactive."""
    with httpx.Client(base_url=provider.issuer, timeout=TIMEOUT) as web:
        answer = web.post("/token/revocation", data={"token": token, "client_id": CLIENT_ID})
        if answer.status_code != 200:
            raise RuntimeError(f"revocation failed: {answer.status_code} {answer.text[:200]}")


class ProviderTokens:
    """A BearerSource backed by the running provider, for tests.

    ``user`` is the login name it claims; ``sign_in_as`` whose tokens it really
    gets (another user's, to see a server refuse them). ``first`` tokens are
    handed out before any real one (an expired or revoked token, say).
    ``signed_out`` makes :meth:`token` raise SignInRequired until cleared.
    """

    def __init__(
        self,
        provider: Provider,
        user: str = USER,
        *,
        sign_in_as: str | None = None,
        first: tuple[str, ...] = (),
        signed_out: bool = False,
    ) -> None:
        self._provider = provider
        self._user = user
        self._sign_in_as = sign_in_as or user
        self._queued = list(first)
        self._current: str | None = None
        self._refresh_token: str | None = None
        self.signed_out = signed_out
        self.handed_out: list[str] = []
        self.invalidated: list[str] = []

    @property
    def user(self) -> str:
        """The login name the tokens are for."""
        return self._user

    async def token(self) -> str:
        """The current token; a fresh one after :meth:`invalidate`."""
        if self.signed_out:
            # Worded as AccessTokens words it: the advice, and the why on its own.
            why = "the provider no longer accepts the saved sign-in"
            raise SignInRequired(f"Sign in again to the provider: {why}", reason=why)
        if self._current is None:
            self._current = self._queued.pop(0) if self._queued else await self._fetch()
        self.handed_out.append(self._current)
        return self._current

    def invalidate(self, token: str) -> None:
        """The server refused ``token``: forget it."""
        self.invalidated.append(token)
        if token == self._current:
            self._current = None

    async def _fetch(self) -> str:
        if self._refresh_token:
            tokens = await asyncio.to_thread(refresh, self._provider, self._refresh_token)
        else:
            tokens = await asyncio.to_thread(sign_in, self._provider, self._sign_in_as)
        self._refresh_token = tokens.refresh_token or self._refresh_token
        return tokens.access_token


def _tokens(body: Mapping[str, object]) -> Tokens:
    return Tokens(
        access_token=str(body["access_token"]),
        refresh_token=str(body.get("refresh_token", "")),
        expires_in=int(str(body.get("expires_in", 0))),
    )


def _ok(response: httpx.Response) -> dict[str, str]:
    if response.status_code != 200:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:300]}"
        )
    body: dict[str, str] = response.json()
    return body


def _submit(web: httpx.Client, page: httpx.Response, form_id: str, **values: str) -> httpx.Response:
    """Fill the form ``form_id`` of ``page`` (hidden fields kept) and post it."""
    forms = _Forms()
    forms.feed(page.text)
    form = forms.found.get(form_id)
    if form is None:
        raise RuntimeError(
            f"no form {form_id!r} on {page.url} ({page.status_code}): {page.text[:300]}"
        )
    action, fields = form
    return web.post(urljoin(str(page.url), action), data={**fields, **values})


class _Forms(HTMLParser):
    """Every form on a page: id → (action, the values of its named inputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, tuple[str, dict[str, str]]] = {}
        self._current: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = {key: value or "" for key, value in attrs}
        if tag == "form":
            self._current = {}
            self.found[named.get("id", "")] = (named.get("action", ""), self._current)
        elif tag == "input" and self._current is not None and named.get("name"):
            self._current[named["name"]] = named.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None
