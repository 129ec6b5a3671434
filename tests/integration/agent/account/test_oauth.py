"""OAuth sign-in against a real OpenID provider, through real headless Chromium.

The provider is ``oidc-provider`` on loopback (``tests/helpers/oidc.py``); the browser
is Python's ``webbrowser`` running ``tests/helpers/browser.py`` through ``BROWSER``,
exactly the path a rep's sign-in takes. The keyring is the test's in-memory one.
"""

from __future__ import annotations

import asyncio
import re
import time
import webbrowser
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from mailbeacon.agent.account.bearer import SignInRequired
from mailbeacon.agent.account.oauth import (
    AccessDenied,
    DeviceCode,
    OAuthClient,
    OAuthError,
    ProviderUnavailable,
    TokenSet,
    discover,
)
from mailbeacon.agent.account.tokens import AccessTokens
from mailbeacon.agent.settings.secrets import Secret, SecretStore
from mailbeacon.core.profile import Profile
from tests.helpers.browser import as_system_browser, confirm_device_code
from tests.helpers.net import free_port
from tests.helpers.oidc import CLIENT_ID, INTROSPECTION_CLIENT, USER, Provider, running_provider

pytestmark = pytest.mark.needs_program("node")
SCOPES = ("openid", "email", "offline_access", "mail")
WAIT_SECONDS = 15.0


@pytest.fixture
def provider() -> Iterator[Provider]:
    """A provider whose access tokens live two seconds: refresh is exercised for real."""
    with running_provider(access_token_ttl=2) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


@pytest.fixture
def secrets(profile: Profile) -> SecretStore:
    return SecretStore(profile.keyring_service)


async def _client(provider: Provider, http: httpx.AsyncClient, **options: object) -> OAuthClient:
    metadata = await discover(provider.issuer, http)
    return OAuthClient(metadata, CLIENT_ID, http, scopes=SCOPES, **options)  # type: ignore[arg-type]


async def _sign_in(provider: Provider, http: httpx.AsyncClient) -> TokenSet:
    client = await _client(provider, http, sign_in_seconds=60.0)
    with as_system_browser():
        return await client.sign_in_with_browser(login_hint=USER)


async def _active(provider: Provider, http: httpx.AsyncClient, token: str) -> bool:
    """What the provider's introspection (Dovecot's view) says of an access token."""
    response = await http.post(f"{provider.issuer}/token/introspection",
                               data={"token": token}, auth=INTROSPECTION_CLIENT)  # fmt: skip
    response.raise_for_status()
    return bool(response.json()["active"])


def _files_holding(folder: Path, *needles: str) -> list[Path]:
    return [
        path for path in folder.rglob("*")
        if path.is_file() and any(needle.encode() in path.read_bytes() for needle in needles)
    ]  # fmt: skip


@pytest.mark.needs_program("chromium")
async def test_browser_sign_in_with_pkce_keeps_the_refresh_token_only_in_the_keyring(
    provider: Provider, http: httpx.AsyncClient, secrets: SecretStore, profile: Profile,
    tmp_path: Path,
) -> None:
    tokens = await _sign_in(provider, http)

    assert tokens.id_token and tokens.refresh_token
    assert await _active(provider, http, tokens.access_token)
    client = await _client(provider, http)
    access = AccessTokens(USER, client, secrets)
    access.accept(tokens)
    assert await access.token() == tokens.access_token
    assert secrets.get(Secret.OAUTH_REFRESH_TOKEN) == tokens.refresh_token
    for folder in (profile.config_dir, profile.data_dir):
        folder.mkdir(parents=True, exist_ok=True)
    assert _files_holding(tmp_path, tokens.refresh_token, tokens.access_token) == []


@pytest.mark.needs_program("chromium")
async def test_an_expired_access_token_is_refreshed_and_the_rotated_refresh_token_kept(
    provider: Provider, http: httpx.AsyncClient, secrets: SecretStore, tmp_path: Path
) -> None:
    tokens = await _sign_in(provider, http)
    access = AccessTokens(USER, await _client(provider, http), secrets, clock=time.monotonic)
    access.accept(tokens)
    first = await access.token()
    async with asyncio.timeout(WAIT_SECONDS):  # the provider's two seconds, for real
        while True:
            if not await _active(provider, http, first):
                break
            await asyncio.sleep(0.2)  # polls the provider's own clock: nothing to wait on

    second = await access.token()

    assert second != first and await _active(provider, http, second)
    rotated = secrets.get(Secret.OAUTH_REFRESH_TOKEN)
    assert rotated and rotated != tokens.refresh_token
    access.invalidate(second)  # a server refused it: one more refresh
    third = await access.token()
    assert third not in (first, second) and await _active(provider, http, third)
    assert _files_holding(tmp_path, rotated, third) == []


@pytest.mark.needs_program("chromium")
async def test_concurrent_callers_share_one_refresh_of_a_rotating_refresh_token(
    provider: Provider, http: httpx.AsyncClient, secrets: SecretStore
) -> None:
    tokens = await _sign_in(provider, http)
    access = AccessTokens(USER, await _client(provider, http), secrets)
    access.accept(tokens)
    access.invalidate(tokens.access_token)

    # Two refreshes with one rotating token would make the provider revoke the sign-in.
    results = await asyncio.gather(*(access.token() for _ in range(5)))

    assert len(set(results)) == 1 and results[0] != tokens.access_token
    assert await _active(provider, http, results[0])


@pytest.mark.needs_program("chromium")
@pytest.mark.expect_log("refused a token request", "needs renewing")
async def test_a_revoked_refresh_token_asks_the_rep_to_sign_in_again(
    provider: Provider, http: httpx.AsyncClient, secrets: SecretStore
) -> None:
    tokens = await _sign_in(provider, http)
    client = await _client(provider, http)
    access = AccessTokens(USER, client, secrets)
    access.accept(tokens)
    assert tokens.refresh_token is not None
    assert await client.revoke(tokens.refresh_token)  # as if revoked in the account's page
    access.invalidate(tokens.access_token)

    with pytest.raises(SignInRequired) as raised:
        await access.token()

    assert str(raised.value).startswith(f"Sign in again to {provider.issuer}: ")
    assert "no longer accepts MailBeacon's sign-in" in str(raised.value)
    assert secrets.get(Secret.OAUTH_REFRESH_TOKEN) is None


@pytest.mark.needs_program("chromium")
async def test_sign_out_revokes_the_refresh_token_and_forgets_it(
    provider: Provider, http: httpx.AsyncClient, secrets: SecretStore
) -> None:
    tokens = await _sign_in(provider, http)
    client = await _client(provider, http)
    access = AccessTokens(USER, client, secrets)
    access.accept(tokens)

    assert await access.sign_out()

    assert not access.is_signed_in()
    assert not await _active(provider, http, tokens.access_token)  # the grant went with it
    with pytest.raises(SignInRequired, match=re.escape(f"holds no sign-in for {USER}")):
        await access.token()


@pytest.mark.needs_program("chromium")
async def test_device_grant_is_completed_in_the_browser(
    provider: Provider, http: httpx.AsyncClient
) -> None:
    client = await _client(provider, http)
    shown: list[DeviceCode] = []
    walks: list[asyncio.Task[str]] = []

    def show(code: DeviceCode) -> None:
        shown.append(code)
        walks.append(asyncio.create_task(
            confirm_device_code(code.verification_uri, code.user_code)))  # fmt: skip

    async with asyncio.timeout(60.0):
        tokens = await client.sign_in_with_code(show)
        said = await walks[0]

    assert shown[0].verification_uri == f"{provider.issuer}/device"
    assert "Success" in said
    assert tokens.refresh_token
    assert await _active(provider, http, tokens.access_token)


@pytest.mark.needs_program("chromium")
async def test_declined_consent_is_a_clear_refusal(
    provider: Provider, http: httpx.AsyncClient
) -> None:
    client = await _client(provider, http, sign_in_seconds=60.0)
    with as_system_browser("--deny"), pytest.raises(AccessDenied) as raised:
        await client.sign_in_with_browser()

    assert str(raised.value).startswith(f"The sign-in at {provider.issuer} was declined")
    assert "allow access" in str(raised.value)


def _forge_state(url: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["state"] = "forged-by-someone-else"
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.mark.needs_program("chromium")
@pytest.mark.expect_log("state that is not ours")
async def test_an_answer_with_another_state_is_refused(
    provider: Provider, http: httpx.AsyncClient
) -> None:
    opened: list[str] = []

    def opener(url: str) -> bool:
        opened.append(url)
        return webbrowser.open(_forge_state(url))

    client = await _client(provider, http, opener=opener, sign_in_seconds=60.0)
    with as_system_browser(), pytest.raises(OAuthError) as raised:
        await client.sign_in_with_browser()

    assert "does not belong to this sign-in" in str(raised.value)
    assert "code_challenge_method=S256" in opened[0]


@pytest.mark.expect_log("did not answer")
async def test_a_provider_that_is_down_is_said_plainly(http: httpx.AsyncClient) -> None:
    issuer = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ProviderUnavailable) as raised:
        await discover(issuer, http)

    assert str(raised.value).startswith(f"The sign-in provider at {issuer} did not answer")
    assert isinstance(raised.value, ConnectionError)  # mail waits, it does not bounce


@pytest.mark.needs_program("chromium")
@pytest.mark.expect_log("did not answer")
async def test_refresh_while_the_provider_is_down_keeps_the_sign_in(
    http: httpx.AsyncClient, secrets: SecretStore
) -> None:
    with running_provider(access_token_ttl=300) as provider:
        tokens = await _sign_in(provider, http)
        access = AccessTokens(USER, await _client(provider, http), secrets)
        access.accept(tokens)
    access.invalidate(tokens.access_token)

    with pytest.raises(ProviderUnavailable, match="did not answer"):
        await access.token()

    assert secrets.get(Secret.OAUTH_REFRESH_TOKEN) == tokens.refresh_token
