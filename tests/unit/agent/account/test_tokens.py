"""AccessTokens: where each token lives, when it is refreshed, what the rep is told.

The provider's token endpoint is a scripted httpx transport (each test says what it
answers), the keyring is the test's in-memory one, the clock is a FakeClock. The
same against a real provider: tests/integration/agent/account/test_oauth.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from mailbeacon.agent.account.bearer import BearerSource, SignInRequired
from mailbeacon.agent.account.oauth import (
    OAuthClient,
    ProviderMetadata,
    ProviderUnavailable,
    TokenSet,
)
from mailbeacon.agent.account.tokens import AccessTokens
from mailbeacon.agent.mailbox.session import sign_in_again_message
from mailbeacon.agent.sending.upstream import sign_in_again
from mailbeacon.agent.settings.secrets import Secret, SecretStore
from mailbeacon.core.profile import Profile
from tests.helpers.fakes import FakeClock, MemoryKeyring

ISSUER = "https://login.example.test"
USER = "alice@example.test"
METADATA = ProviderMetadata(ISSUER, f"{ISSUER}/authorize", f"{ISSUER}/token",
                            revocation_endpoint=f"{ISSUER}/revoke")  # fmt: skip

Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


class TokenEndpoint:
    """Hands out access-N / refresh-N, rotating the refresh token, and records requests."""

    def __init__(self, expires_in: int | None = 3600, rotate: bool = True) -> None:
        self.expires_in = expires_in
        self.rotate = rotate
        self.forms: list[dict[str, str]] = []
        self.issued = 0
        self.refuse: httpx.Response | None = None
        self.hold: asyncio.Event | None = None
        self.arrived = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        form = {key: values[0] for key, values in parse_qs(request.content.decode()).items()}
        self.forms.append(form)
        self.arrived.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.refuse is not None:
            return self.refuse
        self.issued += 1
        body: dict[str, object] = {"access_token": f"access-{self.issued}",
                                   "token_type": "Bearer"}  # fmt: skip
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        if self.rotate:
            body["refresh_token"] = f"refresh-{self.issued}"
        return httpx.Response(200, json=body)


@pytest.fixture
def secrets(profile: Profile) -> SecretStore:
    return SecretStore(profile.keyring_service)


def _tokens(
    endpoint: Handler, secrets: SecretStore, clock: FakeClock, **options: object
) -> AccessTokens:
    http = httpx.AsyncClient(transport=httpx.MockTransport(endpoint))
    client = OAuthClient(METADATA, "mailbeacon", http)
    return AccessTokens(USER, client, secrets, clock=clock, **options)  # type: ignore[arg-type]


def _signed_in(tokens: AccessTokens, expires_in: float | None = 3600) -> None:
    tokens.accept(TokenSet("access-0", expires_in, refresh_token="refresh-0"))


async def test_access_tokens_is_a_bearer_source(secrets: SecretStore) -> None:
    tokens: BearerSource = _tokens(TokenEndpoint(), secrets, FakeClock())
    assert tokens.user == USER


async def test_the_token_is_kept_in_memory_until_a_margin_before_expiry(
    secrets: SecretStore, memory_keyring: MemoryKeyring
) -> None:
    clock, endpoint = FakeClock(), TokenEndpoint()
    tokens = _tokens(endpoint, secrets, clock, margin=60.0)
    _signed_in(tokens)
    assert memory_keyring.items == {(secrets.service, "oauth_refresh_token"): "refresh-0"}

    clock.advance(3600 - 61)
    assert await tokens.token() == "access-0"
    assert endpoint.forms == []
    clock.advance(1)
    assert await tokens.token() == "access-1"
    assert endpoint.forms == [{"grant_type": "refresh_token", "refresh_token": "refresh-0",
                               "client_id": "mailbeacon"}]  # fmt: skip


async def test_a_rotated_refresh_token_replaces_the_old_one_in_the_keyring(
    secrets: SecretStore,
) -> None:
    clock, endpoint = FakeClock(), TokenEndpoint()
    tokens = _tokens(endpoint, secrets, clock)
    _signed_in(tokens)
    tokens.invalidate("access-0")

    await tokens.token()
    assert secrets.get(Secret.OAUTH_REFRESH_TOKEN) == "refresh-1"
    tokens.invalidate("access-1")
    await tokens.token()
    assert endpoint.forms[1]["refresh_token"] == "refresh-1"


async def test_a_provider_that_does_not_rotate_leaves_the_refresh_token_as_it_is(
    secrets: SecretStore,
) -> None:
    clock, endpoint = FakeClock(), TokenEndpoint(rotate=False)
    tokens = _tokens(endpoint, secrets, clock)
    _signed_in(tokens)
    clock.advance(3600)

    assert await tokens.token() == "access-1"
    assert secrets.get(Secret.OAUTH_REFRESH_TOKEN) == "refresh-0"


async def test_a_short_lived_token_is_used_for_half_its_life(secrets: SecretStore) -> None:
    clock, endpoint = FakeClock(), TokenEndpoint(expires_in=2)
    tokens = _tokens(endpoint, secrets, clock, margin=60.0)
    _signed_in(tokens, expires_in=2)

    clock.advance(0.9)
    assert await tokens.token() == "access-0"
    clock.advance(0.2)
    assert await tokens.token() == "access-1"
    assert await tokens.token() == "access-1"


async def test_a_token_without_a_lifetime_is_assumed_to_last_ten_minutes(
    secrets: SecretStore,
) -> None:
    clock = FakeClock()
    tokens = _tokens(TokenEndpoint(expires_in=None), secrets, clock, margin=60.0)
    _signed_in(tokens, expires_in=None)

    clock.advance(539)
    assert await tokens.token() == "access-0"
    clock.advance(1)
    assert await tokens.token() == "access-1"


async def test_invalidate_refreshes_once_and_ignores_a_token_already_replaced(
    secrets: SecretStore,
) -> None:
    endpoint = TokenEndpoint()
    tokens = _tokens(endpoint, secrets, FakeClock())
    _signed_in(tokens)

    tokens.invalidate("access-0")
    assert await tokens.token() == "access-1"
    tokens.invalidate("access-0")  # a second caller that saw the same refusal
    assert await tokens.token() == "access-1"
    assert len(endpoint.forms) == 1


async def test_concurrent_callers_share_one_refresh(secrets: SecretStore) -> None:
    endpoint = TokenEndpoint()
    endpoint.hold = asyncio.Event()
    tokens = _tokens(endpoint, secrets, FakeClock())
    _signed_in(tokens)
    tokens.invalidate("access-0")

    callers = [asyncio.create_task(tokens.token()) for _ in range(10)]
    async with asyncio.timeout(5):
        await endpoint.arrived.wait()  # the first caller is refreshing; the rest queue up
    endpoint.hold.set()

    assert await asyncio.gather(*callers) == ["access-1"] * 10
    assert len(endpoint.forms) == 1


@pytest.mark.expect_log("needs renewing", "refused a token request")
async def test_a_refused_refresh_token_asks_the_rep_to_sign_in_again(
    secrets: SecretStore,
) -> None:
    endpoint = TokenEndpoint()
    endpoint.refuse = httpx.Response(400, json={"error": "invalid_grant",
                                                "error_description": "grant request is invalid"})
    tokens = _tokens(endpoint, secrets, FakeClock(), provider="Example Mail")
    _signed_in(tokens)
    tokens.invalidate("access-0")

    with pytest.raises(SignInRequired) as raised:
        await tokens.token()

    assert str(raised.value) == (
        "Sign in again to Example Mail: the provider no longer accepts MailBeacon's sign-in "
        "(invalid_grant: grant request is invalid); it was revoked, expired or replaced."
    )
    assert secrets.get(Secret.OAUTH_REFRESH_TOKEN) is None
    assert not tokens.is_signed_in()
    # Where the outbox and the mailbox word their own advice around it, once.
    for advice in (sign_in_again(USER, raised.value), sign_in_again_message(USER, raised.value)):
        assert advice.lower().count("sign in again") == 1
        assert "(the provider no longer accepts MailBeacon's sign-in (invalid_grant" in advice


@pytest.mark.expect_log("needs renewing", "refused a token request")
async def test_another_refusal_also_asks_for_a_sign_in_but_keeps_the_token(
    secrets: SecretStore,
) -> None:
    endpoint = TokenEndpoint()
    endpoint.refuse = httpx.Response(400, json={"error": "invalid_client"})
    tokens = _tokens(endpoint, secrets, FakeClock())
    _signed_in(tokens)
    tokens.invalidate("access-0")

    with pytest.raises(SignInRequired, match=f"^Sign in again to {ISSUER}: .*invalid_client"):
        await tokens.token()
    assert secrets.get(Secret.OAUTH_REFRESH_TOKEN) == "refresh-0"


async def test_without_a_stored_sign_in_the_rep_is_asked_to_sign_in(
    secrets: SecretStore,
) -> None:
    tokens = _tokens(TokenEndpoint(), secrets, FakeClock())

    with pytest.raises(SignInRequired) as raised:
        await tokens.token()
    assert str(raised.value) == (
        f"Sign in again to {ISSUER}: MailBeacon holds no sign-in for {USER}."
    )
    assert sign_in_again(USER, raised.value) == (
        f"Sign in again with the account {USER} in the settings: the saved sign-in is no "
        f"longer accepted (MailBeacon holds no sign-in for {USER}). Mail waits in the outbox "
        "until then."
    )


@pytest.mark.expect_log("did not answer")
async def test_a_provider_in_trouble_is_a_connection_problem_not_a_sign_in(
    secrets: SecretStore,
) -> None:
    endpoint = TokenEndpoint()
    endpoint.refuse = httpx.Response(503, text="maintenance")
    tokens = _tokens(endpoint, secrets, FakeClock())
    _signed_in(tokens)
    tokens.invalidate("access-0")

    with pytest.raises(ProviderUnavailable, match=r"did not answer \(HTTP 503\)"):
        await tokens.token()
    assert secrets.get(Secret.OAUTH_REFRESH_TOKEN) == "refresh-0"


async def test_sign_out_revokes_and_forgets(secrets: SecretStore) -> None:
    seen: list[httpx.Request] = []

    async def provider(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    tokens = _tokens(provider, secrets, FakeClock())
    _signed_in(tokens)

    assert await tokens.sign_out()

    assert [str(request.url) for request in seen] == [f"{ISSUER}/revoke"]
    assert parse_qs(seen[0].content.decode())["token"] == ["refresh-0"]
    assert secrets.get(Secret.OAUTH_REFRESH_TOKEN) is None


async def test_tokens_stay_out_of_reprs_and_files(secrets: SecretStore, tmp_path: Path) -> None:
    tokens = TokenSet("access-secret", 60, refresh_token="refresh-secret", id_token="id-secret")
    access = _tokens(TokenEndpoint(), secrets, FakeClock())
    access.accept(tokens)

    assert "secret" not in repr(tokens)
    assert _files_saying(tmp_path, "secret") == []


def _files_saying(folder: Path, text: str) -> list[Path]:
    return [path for path in folder.rglob("*")
            if path.is_file() and text in path.read_text(errors="replace")]  # fmt: skip
