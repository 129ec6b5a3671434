"""OAuth 2.0 / OpenID Connect sign-in to the rep's mail provider (issue 13).

* **Discovery**: the issuer's ``/.well-known/openid-configuration`` (OpenID Connect
  Discovery 1.0, section 4), which must name the same issuer. ``http://`` is accepted
  only on a loopback host (a local gateway, the test provider): anywhere else the
  tokens would cross the network in clear.
* **Browser sign-in**: the authorization code grant with PKCE S256 (RFC 7636) and a
  loopback redirect (RFC 8252, ``loopback.py``). The provider's page opens in the
  system browser through an injected opener (default ``webbrowser.open``, which
  honours ``BROWSER``); ``state`` and the RFC 9207 ``iss`` parameter make sure the
  answer belongs to this sign-in at this provider.
* **Sign-in with a code** for a machine without a browser: the device authorization
  grant (RFC 8628). The address and user code go to a callback; polling keeps to
  ``interval``, backs off on ``slow_down`` and stops at ``expires_in``.
* **Refresh** (RFC 6749, section 6) and **revocation** (RFC 7009) where offered.

Every failure is an :class:`OAuthError` whose message is a sentence for the rep, with
a log line for the operator. A provider that does not answer is
:class:`ProviderUnavailable`, also a ``ConnectionError``: callers that wait out
network trouble (the outbox) wait this out too. Tokens never go into a log line.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import time
import webbrowser
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from mailbeacon.agent.account.loopback import LoopbackRedirect
from mailbeacon.core.language import ENGLISH, PHRASES, Language, Phrase, mark

log = logging.getLogger(__name__)

DEFAULT_SCOPES = ("openid", "email", "offline_access")
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SIGN_IN_SECONDS = 600.0  # the rep may need a while for a password manager or a second factor
DEFAULT_INTERVAL = 5.0  # RFC 8628, section 3.2: when the provider names none
SLOW_DOWN_STEP = 5.0  # RFC 8628, section 3.5
DESCRIPTION_CHARS = 200

Opener = Callable[[str], bool]
Sleep = Callable[[float], Awaitable[None]]


class OAuthError(Exception):
    """A sign-in or token request failed; the message says what to do."""


class ProviderUnavailable(OAuthError, ConnectionError):
    """The provider did not answer, or answered with a server error: try again later."""


class AccessDenied(OAuthError):
    """The rep (or the provider's policy) declined MailBeacon's access."""


class InvalidGrant(OAuthError):
    """The provider refused a code or a refresh token: revoked, expired or replaced."""


class SignInExpired(OAuthError):
    """The sign-in was not completed in time (browser or code)."""


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The endpoints discovery found for one issuer."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    device_authorization_endpoint: str | None = None
    revocation_endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class TokenSet:
    """What the token endpoint handed out (tokens kept out of ``repr``)."""

    access_token: str = field(repr=False)
    expires_in: float | None
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)
    scope: str | None = None



@dataclass(frozen=True, slots=True)
class DeviceCode:
    """What the rep needs to confirm a sign-in with a code on another device."""

    verification_uri: str
    user_code: str
    expires_in: float
    verification_uri_complete: str | None = None


class _ProviderSaid(Exception):
    """An OAuth error response (RFC 6749, section 5.2), before it is told to the rep."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(code)
        self.code = code
        self.description = description


async def discover(issuer: str, http: httpx.AsyncClient) -> ProviderMetadata:
    """The provider's endpoints from its OpenID configuration document."""
    issuer = issuer.rstrip("/")
    _require_secure(issuer, Phrase(mark("The sign-in provider's address")))
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = await http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise _unavailable(issuer, exc) from exc
    if response.status_code >= 500:
        raise _unavailable(issuer, f"HTTP {response.status_code}")
    if response.status_code != 200:
        log.warning("OpenID discovery at %s answered HTTP %s", url, response.status_code)
        raise OAuthError(
            Phrase(
                mark(
                    "{issuer} does not publish an OpenID configuration (HTTP {status}). Check "
                    "the sign-in provider's address."
                ),
                issuer=issuer,
                status=response.status_code,
            )
        )
    return _metadata(issuer, _json_object(response, issuer))


def _metadata(issuer: str, document: Mapping[str, Any]) -> ProviderMetadata:
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        log.warning("OpenID configuration of %s names issuer %r", issuer, document.get("issuer"))
        raise OAuthError(
            Phrase(
                mark(
                    "The OpenID configuration at {issuer} belongs to another issuer, so "
                    "MailBeacon does not trust it. Check the sign-in provider's address."
                ),
                issuer=issuer,
            )
        )
    methods = document.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise OAuthError(
            Phrase(
                mark(
                    "{issuer} does not offer PKCE with S256, which MailBeacon needs for a safe "
                    "sign-in. Ask the provider's administrator to enable it."
                ),
                issuer=issuer,
            )
        )
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=_endpoint(document, "authorization_endpoint", issuer),
        token_endpoint=_endpoint(document, "token_endpoint", issuer),
        device_authorization_endpoint=_optional_endpoint(
            document, "device_authorization_endpoint"
        ),
        revocation_endpoint=_optional_endpoint(document, "revocation_endpoint"),
    )


def _endpoint(document: Mapping[str, Any], name: str, issuer: str) -> str:
    url = _optional_endpoint(document, name)
    if url is None:
        raise OAuthError(
            Phrase(
                mark("The OpenID configuration at {issuer} names no {endpoint}."),
                issuer=issuer,
                endpoint=name,
            )
        )
    return url


def _optional_endpoint(document: Mapping[str, Any], name: str) -> str | None:
    url = document.get(name)
    if not isinstance(url, str) or not url:
        return None
    _require_secure(url, Phrase(mark("The provider's {endpoint}"), endpoint=name))
    return url


def _require_secure(url: str, what: str) -> None:
    """HTTPS, or plain HTTP to this computer only (RFC 8252 allows no less)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and _is_loopback(parts.hostname or ""):
        return
    raise OAuthError(
        Phrase(
            mark(
                "{what} ({url}) must start with https:// (plain http:// is allowed only for "
                "127.0.0.1 or localhost), or sign-in tokens would cross the network in clear."
            ),
            what=what,
            url=url,
        )
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OAuthClient:
    """Sign-in, refresh and revocation at one provider for one client id."""

    def __init__(
        self,
        metadata: ProviderMetadata,
        client_id: str,
        http: httpx.AsyncClient,
        *,
        scopes: tuple[str, ...] = DEFAULT_SCOPES,
        client_secret: str | None = None,
        opener: Opener = webbrowser.open,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        sign_in_seconds: float = SIGN_IN_SECONDS,
        tr: Language = ENGLISH,
    ) -> None:
        """``client_secret`` only for providers that give installed apps one (it is
        not secret there, RFC 8252 section 8.5); ``opener`` shows a URL in a browser;
        a browser sign-in not completed within ``sign_in_seconds`` is given up; ``tr``
        words the page the browser shows once it is sent back."""
        self._tr = tr
        self.metadata = metadata
        self._client_id = client_id
        self._http = http
        self._scopes = scopes
        self._client_secret = client_secret
        self._opener = opener
        self._clock = clock
        self._sleep = sleep
        self._sign_in_seconds = sign_in_seconds

    @property
    def issuer(self) -> str:
        """The provider's issuer URL."""
        return self.metadata.issuer

    async def sign_in_with_browser(self, *, login_hint: str | None = None) -> TokenSet:
        """Open the provider's sign-in page in the browser; tokens once the rep agreed."""
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 characters: RFC 7636 wants 43 to 128
        async with LoopbackRedirect(_redirect_answer(state, self.issuer, self._tr)) as listener:
            url = self._authorization_url(listener.redirect_uri, state, verifier, login_hint)
            params = await self._await_redirect(listener, url)
            redirect_uri = listener.redirect_uri
        code = _code_from_redirect(params, state, self.issuer)
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": redirect_uri, "code_verifier": verifier}  # fmt: skip
        tokens = await self._token(form)
        log.info("signed in at %s with the browser", self.issuer)
        return tokens

    def _authorization_url(
        self, redirect_uri: str, state: str, verifier: str, login_hint: str | None
    ) -> str:
        challenge = _b64url(hashlib.sha256(verifier.encode("ascii")).digest())
        query = {
            "response_type": "code",
            "client_id": self._client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self._scopes),
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if "offline_access" in self._scopes:
            query["prompt"] = "consent"  # OpenID Connect Core 11: offline access needs it
        if login_hint:
            query["login_hint"] = login_hint
        separator = "&" if "?" in self.metadata.authorization_endpoint else "?"
        return f"{self.metadata.authorization_endpoint}{separator}{urlencode(query)}"

    async def _await_redirect(self, listener: LoopbackRedirect, url: str) -> dict[str, str]:
        # A GenericBrowser (BROWSER=...) waits for its program to exit: run it on a
        # thread so the listener keeps answering meanwhile.
        opened = asyncio.ensure_future(asyncio.to_thread(self._opener, url))
        opened.add_done_callback(_retrieve)
        waiting = asyncio.ensure_future(listener.wait())
        try:
            async with asyncio.timeout(self._sign_in_seconds):
                await asyncio.wait({opened, waiting}, return_when=asyncio.FIRST_COMPLETED)
                if not waiting.done() and not _opened(opened):
                    log.warning("no web browser could be opened for the sign-in at %s", self.issuer)
                    raise OAuthError(
                        Phrase(
                            mark(
                                "MailBeacon could not open a web browser for the sign-in. Set "
                                "a default browser (or the BROWSER environment variable), or "
                                "sign in with a code instead."
                            )
                        )
                    )
                return await waiting
        except TimeoutError:
            seconds = self._sign_in_seconds
            log.warning("browser sign-in at %s timed out after %.0f s", self.issuer, seconds)
            raise SignInExpired(
                Phrase(
                    mark(
                        "The sign-in at {issuer} was not completed within {duration}. Start it "
                        "again."
                    ),
                    issuer=self.issuer,
                    duration=_duration(seconds),
                )
            ) from None
        finally:
            waiting.cancel()

    async def sign_in_with_code(self, show: Callable[[DeviceCode], None]) -> TokenSet:
        """Sign in on another device: ``show`` tells the rep where to go, which code to enter."""
        endpoint = self.metadata.device_authorization_endpoint
        if endpoint is None:
            raise OAuthError(
                Phrase(
                    mark("{issuer} does not offer sign-in with a code. Sign in with the browser."),
                    issuer=self.issuer,
                )
            )
        body = await self._form(endpoint, {"scope": " ".join(self._scopes)})
        device_code, code, interval = _device_code(body, self.issuer)
        show(code)
        log.info("sign-in with a code at %s: waiting for the rep", self.issuer)
        tokens = await self._poll(device_code, code, interval)
        log.info("signed in at %s with a code", self.issuer)
        return tokens

    async def _poll(self, device_code: str, code: DeviceCode, interval: float) -> TokenSet:
        deadline = self._clock() + code.expires_in
        form = {"grant_type": DEVICE_GRANT, "device_code": device_code}
        while True:
            await self._sleep(interval)
            if self._clock() >= deadline:
                raise _code_expired(self.issuer, code)
            try:
                return _token_set(await self._form(self.metadata.token_endpoint, form))
            except _ProviderSaid as said:
                if said.code == "authorization_pending":
                    continue
                if said.code == "slow_down":
                    interval += SLOW_DOWN_STEP
                    continue
                if said.code == "expired_token":
                    raise _code_expired(self.issuer, code) from None
                raise _refusal(self.issuer, said) from None

    async def refresh(self, refresh_token: str) -> TokenSet:
        """New tokens for a refresh token (a new refresh token too, if the provider rotates)."""
        return await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def revoke(self, token: str, hint: str = "refresh_token") -> bool:
        """Revoke ``token`` (RFC 7009); False if the provider offers no revocation."""
        endpoint = self.metadata.revocation_endpoint
        if endpoint is None:
            log.info("%s offers no token revocation", self.issuer)
            return False
        try:
            await self._form(endpoint, {"token": token, "token_type_hint": hint})
        except _ProviderSaid as said:
            raise _refusal(self.issuer, said) from None
        log.info("revoked the %s at %s", hint.replace("_", " "), self.issuer)
        return True

    async def _token(self, form: Mapping[str, str]) -> TokenSet:
        try:
            body = await self._form(self.metadata.token_endpoint, form)
        except _ProviderSaid as said:
            raise _refusal(self.issuer, said) from None
        return _token_set(body)

    async def _form(self, url: str, form: Mapping[str, str]) -> dict[str, Any]:
        """POST a form with the client's identity; the JSON answer, or _ProviderSaid."""
        data = {**form, "client_id": self._client_id}
        if self._client_secret:
            data["client_secret"] = self._client_secret
        try:
            response = await self._http.post(url, data=data, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise _unavailable(self.issuer, exc) from exc
        if response.status_code >= 500:
            raise _unavailable(self.issuer, f"HTTP {response.status_code}")
        if response.status_code == 200 and not response.content:
            return {}  # revocation answers 200 with an empty body
        body = _json_object(response, self.issuer)
        if response.status_code != 200:
            raise _ProviderSaid(
                _plain(body.get("error") or f"HTTP {response.status_code}"),
                _plain(body.get("error_description") or ""),
            )
        return body


def _redirect_answer(
    state: str, issuer: str, tr: Language = ENGLISH
) -> Callable[[Mapping[str, str]], tuple[int, str]]:
    """The page the browser shows after the provider sent it back, in ``tr``."""

    def answer(params: Mapping[str, str]) -> tuple[int, str]:
        if not hmac.compare_digest(params.get("state", ""), state):
            return 400, tr.t(
                "This answer does not belong to MailBeacon's sign-in. Close this window and "
                "start the sign-in again from MailBeacon."
            )
        if "error" in params:
            return 200, tr.t(
                "The sign-in at {issuer} was not completed. You can close this window and "
                "return to MailBeacon.",
                issuer=issuer,
            )
        return 200, tr.t("You are signed in. You can close this window and return to MailBeacon.")

    return answer


def _code_from_redirect(params: Mapping[str, str], state: str, issuer: str) -> str:
    """The authorization code, once the redirect proved it belongs to this sign-in."""
    if not hmac.compare_digest(params.get("state", ""), state):
        log.warning("sign-in redirect with a state that is not ours; ignored")
        raise OAuthError(
            Phrase(
                mark(
                    "The answer that reached MailBeacon does not belong to this sign-in (its "
                    "state does not match), so it was ignored. Start the sign-in again; if this "
                    "repeats, another program on this computer may be interfering."
                )
            )
        )
    if "iss" in params and params["iss"].rstrip("/") != issuer:
        log.warning("sign-in redirect from issuer %r, expected %s", params["iss"], issuer)
        raise OAuthError(
            Phrase(
                mark(
                    "The sign-in answer came from {other}, not from {issuer}, so it was "
                    "ignored. Start the sign-in again."
                ),
                other=_plain(params["iss"]),
                issuer=issuer,
            )
        )
    if "error" in params:
        raise _refusal(issuer, _ProviderSaid(
            _plain(params["error"]), _plain(params.get("error_description", ""))))  # fmt: skip
    code = params.get("code", "")
    if not code:
        raise OAuthError(
            Phrase(
                mark("{issuer} sent the browser back without a sign-in code. Try again."),
                issuer=issuer,
            )
        )
    return code


def _refusal(issuer: str, said: _ProviderSaid) -> OAuthError:
    """The rep's sentence (and the operator's log line) for an OAuth error response."""
    detail = f"{said.code}: {said.description}" if said.description else said.code
    if said.code == "access_denied":
        log.info("access declined at %s (%s)", issuer, detail)
        return AccessDenied(
            Phrase(
                mark(
                    "The sign-in at {issuer} was declined ({detail}), so MailBeacon cannot use "
                    "the mailbox. Start the sign-in again and allow access."
                ),
                issuer=issuer,
                detail=detail,
            )
        )
    log.warning("%s refused a token request (%s)", issuer, detail)
    if said.code == "invalid_grant":
        return InvalidGrant(
            Phrase(
                mark(
                    "the provider no longer accepts MailBeacon's sign-in ({detail}); it was "
                    "revoked, expired or replaced."
                ),
                detail=detail,
            )
        )
    return OAuthError(
        Phrase(
            mark(
                "{issuer} refused the sign-in ({detail}). Check the account settings, or ask "
                "the provider's administrator whether MailBeacon may sign in."
            ),
            issuer=issuer,
            detail=detail,
        )
    )


def _code_expired(issuer: str, code: DeviceCode) -> SignInExpired:
    log.warning("the sign-in code for %s expired before it was confirmed", issuer)
    return SignInExpired(
        Phrase(
            mark(
                "The sign-in code {code} expired before it was confirmed at {address}. Start "
                "the sign-in again and enter the new code."
            ),
            code=code.user_code,
            address=code.verification_uri,
        )
    )


def _unavailable(issuer: str, cause: BaseException | str) -> ProviderUnavailable:
    reason = str(cause) or type(cause).__name__
    log.warning("sign-in provider %s did not answer: %s", issuer, reason)
    return ProviderUnavailable(
        Phrase(
            mark(
                "The sign-in provider at {issuer} did not answer ({reason}). Check the network "
                "connection and try again in a few minutes."
            ),
            issuer=issuer,
            reason=reason,
        )
    )


def _device_code(body: Mapping[str, Any], issuer: str) -> tuple[str, DeviceCode, float]:
    try:
        device_code = _text(body, "device_code")
        code = DeviceCode(
            verification_uri=_text(body, "verification_uri"),
            user_code=_text(body, "user_code"),
            expires_in=float(body["expires_in"]),
            verification_uri_complete=body.get("verification_uri_complete") or None,
        )
        interval = float(body.get("interval") or DEFAULT_INTERVAL)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("device authorization answer from %s lacks %s", issuer, exc)
        raise OAuthError(
            Phrase(mark("{issuer} gave an incomplete sign-in code. Try again."), issuer=issuer)
        ) from exc
    return device_code, code, interval


def _token_set(body: Mapping[str, Any]) -> TokenSet:
    try:
        access_token = _text(body, "access_token")
        token_type = str(body.get("token_type", "bearer"))
        expires = body.get("expires_in")
        expires_in = float(expires) if expires is not None else None
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("token answer without a usable %s", exc)
        raise OAuthError(
            Phrase(mark("The provider's answer held no usable access token. Try again."))
        ) from exc
    if token_type.lower() != "bearer":
        raise OAuthError(
            Phrase(
                mark("The provider handed out a {kind} token, not a bearer one."),
                kind=_plain(token_type),
            )
        )
    return TokenSet(
        access_token=access_token,
        expires_in=expires_in,
        refresh_token=body.get("refresh_token") or None,
        id_token=body.get("id_token") or None,
        scope=body.get("scope") or None,
    )


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str) or not value:
        raise ValueError(name)
    return value


def _json_object(response: httpx.Response, issuer: str) -> dict[str, Any]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        log.warning("%s answered %s with HTTP %s and no JSON object",
                    issuer, response.request.url, response.status_code)  # fmt: skip
        raise OAuthError(
            Phrase(
                mark(
                    "{issuer} answered with something that is not an OAuth response (HTTP "
                    "{status}). Check the sign-in provider's address."
                ),
                issuer=issuer,
                status=response.status_code,
            )
        )
    return body


def _plain(value: object) -> str:
    """Text from the provider as one short line (it ends up in a sentence for the rep)."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(value))
    return text[:DESCRIPTION_CHARS]


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return PHRASES.n("{count} minute", "{count} minutes", round(seconds / 60))
    return Phrase(mark("{seconds} seconds"), seconds=f"{seconds:g}")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _opened(opened: asyncio.Future[bool]) -> bool:
    """Did the opener show the page? An opener that raised did not."""
    return opened.done() and opened.exception() is None and bool(opened.result())


def _retrieve(future: asyncio.Future[bool]) -> None:
    """Collect an opener's exception so asyncio does not report it as never retrieved."""
    if not future.cancelled() and future.exception() is not None:
        log.info("the browser opener failed: %s", future.exception())
