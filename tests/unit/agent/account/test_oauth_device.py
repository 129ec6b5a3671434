"""Sign-in with a code (RFC 8628): the interval, slow_down, expiry and refusals.

The provider is a scripted httpx transport answering the polls in turn; the sleep is
injected and moves a FakeClock, so the polling schedule is what the test reads. The
same against a real provider and browser: tests/integration/agent/account/test_oauth.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs

import httpx
import pytest

from mailbeacon.agent.account.oauth import (
    DEVICE_GRANT,
    AccessDenied,
    DeviceCode,
    OAuthClient,
    OAuthError,
    ProviderMetadata,
    SignInExpired,
)
from tests.helpers.fakes import FakeClock

ISSUER = "https://login.example.test"
METADATA = ProviderMetadata(ISSUER, f"{ISSUER}/auth", f"{ISSUER}/token",
                            device_authorization_endpoint=f"{ISSUER}/device/auth")  # fmt: skip
DEVICE_ANSWER = {
    "device_code": "dev-1", "user_code": "WDJB-MJHT", "verification_uri": f"{ISSUER}/device",
    "verification_uri_complete": f"{ISSUER}/device?user_code=WDJB-MJHT", "expires_in": 600,
}  # fmt: skip
TOKENS = {"access_token": "access-1", "token_type": "Bearer", "expires_in": 300,
          "refresh_token": "refresh-1"}  # fmt: skip


class Script:
    """The device endpoint's answer, then the token endpoint's answers in turn."""

    def __init__(self, device: dict[str, object], polls: list[httpx.Response]) -> None:
        self.device = device
        self.polls: Iterator[httpx.Response] = iter(polls)
        self.forms: list[dict[str, list[str]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.forms.append(parse_qs(request.content.decode()))
        if request.url.path == "/device/auth":
            return httpx.Response(200, json=self.device)
        return next(self.polls)


def _error(code: str) -> httpx.Response:
    return httpx.Response(400, json={"error": code})


class Sleeper:
    """An injected sleep that records each wait and moves the clock by it."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)


def _client(script: Script, clock: FakeClock, sleeper: Sleeper,
            metadata: ProviderMetadata = METADATA) -> OAuthClient:  # fmt: skip
    http = httpx.AsyncClient(transport=httpx.MockTransport(script))
    return OAuthClient(metadata, "mailbeacon", http, scopes=("openid", "mail"),
                       clock=clock, sleep=sleeper)  # fmt: skip


async def test_polls_at_the_interval_and_backs_off_on_slow_down() -> None:
    clock = FakeClock()
    sleeper = Sleeper(clock)
    script = Script({**DEVICE_ANSWER, "interval": 3}, [
        _error("authorization_pending"), _error("slow_down"), _error("authorization_pending"),
        httpx.Response(200, json=TOKENS),
    ])  # fmt: skip
    shown: list[DeviceCode] = []

    tokens = await _client(script, clock, sleeper).sign_in_with_code(shown.append)

    assert shown == [DeviceCode(f"{ISSUER}/device", "WDJB-MJHT", 600.0,
                                f"{ISSUER}/device?user_code=WDJB-MJHT")]  # fmt: skip
    assert sleeper.waits == [3, 3, 8, 8]
    assert tokens.access_token == "access-1" and tokens.refresh_token == "refresh-1"
    assert script.forms[0] == {"scope": ["openid mail"], "client_id": ["mailbeacon"]}
    assert script.forms[1] == {"grant_type": [DEVICE_GRANT], "device_code": ["dev-1"],
                               "client_id": ["mailbeacon"]}  # fmt: skip


async def test_without_an_interval_it_waits_five_seconds() -> None:
    clock = FakeClock()
    sleeper = Sleeper(clock)
    script = Script(DEVICE_ANSWER, [httpx.Response(200, json=TOKENS)])

    await _client(script, clock, sleeper).sign_in_with_code(lambda code: None)

    assert sleeper.waits == [5.0]


@pytest.mark.expect_log("expired before it was confirmed")
async def test_the_code_expires_on_the_clients_clock() -> None:
    clock = FakeClock()
    sleeper = Sleeper(clock)
    script = Script({**DEVICE_ANSWER, "expires_in": 12},
                    [_error("authorization_pending")] * 5)  # fmt: skip

    with pytest.raises(SignInExpired) as raised:
        await _client(script, clock, sleeper).sign_in_with_code(lambda code: None)

    assert sleeper.waits == [5, 5, 5]  # the third wait ends past the 12 seconds: no poll
    assert len(script.forms) == 3
    assert str(raised.value) == (
        f"The sign-in code WDJB-MJHT expired before it was confirmed at {ISSUER}/device. "
        "Start the sign-in again and enter the new code."
    )


@pytest.mark.expect_log("expired before it was confirmed")
async def test_the_provider_saying_expired_token_ends_the_wait() -> None:
    clock = FakeClock()
    script = Script(DEVICE_ANSWER, [_error("authorization_pending"), _error("expired_token")])
    with pytest.raises(SignInExpired, match="WDJB-MJHT expired"):
        await _client(script, clock, Sleeper(clock)).sign_in_with_code(lambda code: None)


async def test_a_declined_code_is_access_denied() -> None:
    clock = FakeClock()
    script = Script(DEVICE_ANSWER, [_error("access_denied")])
    with pytest.raises(AccessDenied) as raised:
        await _client(script, clock, Sleeper(clock)).sign_in_with_code(lambda code: None)
    assert str(raised.value) == (
        f"The sign-in at {ISSUER} was declined (access_denied), so MailBeacon cannot use the "
        "mailbox. Start the sign-in again and allow access."
    )


async def test_a_provider_without_a_device_endpoint_says_to_use_the_browser() -> None:
    clock = FakeClock()
    metadata = ProviderMetadata(ISSUER, f"{ISSUER}/auth", f"{ISSUER}/token")
    client = _client(Script(DEVICE_ANSWER, []), clock, Sleeper(clock), metadata)
    with pytest.raises(OAuthError, match="does not offer sign-in with a code"):
        await client.sign_in_with_code(lambda code: None)


@pytest.mark.expect_log("lacks")
async def test_an_incomplete_device_answer_is_refused() -> None:
    clock = FakeClock()
    script = Script({"device_code": "dev-1", "expires_in": 600}, [])
    with pytest.raises(OAuthError, match="incomplete sign-in code"):
        await _client(script, clock, Sleeper(clock)).sign_in_with_code(lambda code: None)
