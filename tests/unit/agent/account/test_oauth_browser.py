"""Browser sign-in: PKCE S256, the loopback listener, state and iss checks, the pages.

The "browser" is an injected opener that requests the redirect address itself, on a
real loopback socket, the way the provider would send the browser back; the token
endpoint is a scripted httpx transport that checks the PKCE verifier. The same
through headless Chromium and a real provider: tests/integration/agent/account.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import threading
import webbrowser
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from mailbeacon.agent.account.oauth import (
    AccessDenied,
    InvalidGrant,
    OAuthClient,
    OAuthError,
    ProviderMetadata,
    SignInExpired,
)

ISSUER = "https://login.example.test"
METADATA = ProviderMetadata(ISSUER, f"{ISSUER}/auth?tenant=7", f"{ISSUER}/token")
TOKENS = {"access_token": "access-1", "token_type": "bearer", "expires_in": 300,
          "refresh_token": "refresh-1", "id_token": "a.b.c"}  # fmt: skip


class Browser:
    """Opens the authorization URL by going straight to the redirect with ``answer``."""

    def __init__(self, answer: Callable[[dict[str, str]], dict[str, str]],
                 first: str | None = None) -> None:  # fmt: skip
        self.answer = answer
        self.first = first  # another path requested before the redirect (a favicon)
        self.asked: dict[str, str] = {}
        self.pages: list[httpx.Response] = []
        self.finished = threading.Event()

    def __call__(self, url: str) -> bool:
        self.asked = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
        redirect = self.asked["redirect_uri"]
        try:
            with httpx.Client(timeout=5) as http:
                if self.first is not None:
                    self.pages.append(http.get(redirect.replace("/callback", self.first)))
                query = urlencode(self.answer(self.asked))
                self.pages.append(http.get(f"{redirect}?{query}"))
        finally:
            self.finished.set()
        return True

    async def seen(self) -> list[httpx.Response]:
        """The pages, once the browser has read them (it runs on the opener's thread)."""
        assert await asyncio.to_thread(self.finished.wait, 5.0)
        return self.pages


class TokenEndpoint:
    """Checks the code exchange (PKCE included) and answers with ``TOKENS``."""

    def __init__(self, browser: Browser, answer: httpx.Response | None = None) -> None:
        self.browser = browser
        self.answer = answer or httpx.Response(200, json=TOKENS)
        self.forms: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = {key: values[0] for key, values in parse_qs(request.content.decode()).items()}
        self.forms.append(form)
        verifier = form["code_verifier"].encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        assert challenge.decode() == self.browser.asked["code_challenge"]
        assert form["redirect_uri"] == self.browser.asked["redirect_uri"]
        return self.answer


def _granted(asked: dict[str, str]) -> dict[str, str]:
    return {"code": "code-1", "state": asked["state"], "iss": ISSUER}


def _client(browser: Callable[[str], bool], endpoint: TokenEndpoint | None = None,
            sign_in_seconds: float = 30.0) -> OAuthClient:  # fmt: skip
    handler = endpoint or (lambda request: httpx.Response(500))
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return OAuthClient(METADATA, "mailbeacon", http, scopes=("openid", "offline_access"),
                       opener=browser, sign_in_seconds=sign_in_seconds)  # fmt: skip


async def test_sign_in_sends_pkce_s256_and_exchanges_the_code() -> None:
    browser = Browser(_granted, first="/favicon.ico")
    endpoint = TokenEndpoint(browser)

    tokens = await _client(browser, endpoint).sign_in_with_browser(login_hint="alice@x.test")

    assert tokens.access_token == "access-1" and tokens.refresh_token == "refresh-1"
    asked = browser.asked
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/callback", asked["redirect_uri"])
    assert {key: asked[key] for key in ("tenant", "response_type", "client_id", "scope",
                                        "code_challenge_method", "prompt", "login_hint")} == {
        "tenant": "7", "response_type": "code", "client_id": "mailbeacon",
        "scope": "openid offline_access", "code_challenge_method": "S256",
        "prompt": "consent", "login_hint": "alice@x.test",
    }  # fmt: skip
    assert len(asked["state"]) >= 43
    assert endpoint.forms[0]["grant_type"] == "authorization_code"
    assert endpoint.forms[0]["code"] == "code-1"
    assert 43 <= len(endpoint.forms[0]["code_verifier"]) <= 128
    favicon, callback = await browser.seen()
    assert favicon.status_code == 404
    assert callback.status_code == 200 and "You can close this window" in callback.text
    assert callback.headers["cache-control"] == "no-store"


async def test_the_listener_is_gone_after_the_sign_in() -> None:
    browser = Browser(_granted)
    await _client(browser, TokenEndpoint(browser)).sign_in_with_browser()

    async with httpx.AsyncClient(timeout=5) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(browser.asked["redirect_uri"])


async def test_each_sign_in_has_its_own_state_and_verifier() -> None:
    first, second = Browser(_granted), Browser(_granted)
    await _client(first, TokenEndpoint(first)).sign_in_with_browser()
    await _client(second, TokenEndpoint(second)).sign_in_with_browser()

    assert first.asked["state"] != second.asked["state"]
    assert first.asked["code_challenge"] != second.asked["code_challenge"]


@pytest.mark.expect_log("state that is not ours")
async def test_an_answer_with_another_state_is_refused() -> None:
    browser = Browser(lambda asked: {"code": "code-1", "state": "forged"})

    with pytest.raises(OAuthError, match="does not belong to this sign-in"):
        await _client(browser).sign_in_with_browser()

    (page,) = await browser.seen()
    assert page.status_code == 400
    assert "does not belong to MailBeacon's sign-in" in page.text


@pytest.mark.expect_log("expected https://login.example.test")
async def test_an_answer_naming_another_issuer_is_refused() -> None:
    browser = Browser(lambda asked: {**_granted(asked), "iss": "https://evil.example.test"})
    with pytest.raises(OAuthError, match=r"came from https://evil\.example\.test, not from"):
        await _client(browser).sign_in_with_browser()


async def test_declined_consent_is_access_denied_and_the_page_says_so() -> None:
    def declined(asked: dict[str, str]) -> dict[str, str]:
        return {"error": "access_denied", "error_description": "The user said no\r\n",
                "state": asked["state"]}  # fmt: skip

    browser = Browser(declined)
    with pytest.raises(AccessDenied) as raised:
        await _client(browser).sign_in_with_browser()

    assert str(raised.value) == (
        f"The sign-in at {ISSUER} was declined (access_denied: The user said no  ), so "
        "MailBeacon cannot use the mailbox. Start the sign-in again and allow access."
    )
    (page,) = await browser.seen()
    assert "was not completed" in page.text


@pytest.mark.expect_log("refused a token request")
async def test_a_refused_code_is_invalid_grant() -> None:
    browser = Browser(_granted)
    refused = httpx.Response(400, json={"error": "invalid_grant"})
    with pytest.raises(InvalidGrant, match="no longer accepts"):
        await _client(browser, TokenEndpoint(browser, refused)).sign_in_with_browser()


def _no_browser(url: str) -> bool:
    return False


def _broken_browser(url: str) -> bool:
    raise webbrowser.Error("could not locate runnable browser")


@pytest.mark.parametrize("opener", [_no_browser, _broken_browser])
@pytest.mark.expect_log("no web browser could be opened")
async def test_no_browser_is_said_with_what_to_do(opener: Callable[[str], bool]) -> None:
    with pytest.raises(OAuthError) as raised:
        await _client(opener).sign_in_with_browser()
    assert str(raised.value) == (
        "MailBeacon could not open a web browser for the sign-in. Set a default browser "
        "(or the BROWSER environment variable), or sign in with a code instead."
    )


@pytest.mark.expect_log("timed out")
async def test_a_sign_in_nobody_completes_ends() -> None:
    with pytest.raises(SignInExpired) as raised:
        await _client(lambda url: True, sign_in_seconds=0.3).sign_in_with_browser()
    assert str(raised.value) == (
        f"The sign-in at {ISSUER} was not completed within 0.3 seconds. Start it again."
    )
