"""Upstream SMTP logins with OAuth tokens (XOAUTH2, OAUTHBEARER) against Dovecot SUBMISSION.

Dovecot checks every token at the real OpenID provider's introspection endpoint;
submitted mail is relayed to an aiosmtpd sink. The token source signs in through
the provider's device flow (tests/helpers/oidc_login.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from mailbeacon.agent.sending import upstream as upstream_module
from mailbeacon.agent.sending.outbox import Outbox
from mailbeacon.agent.sending.outbox_items import DeliveryError, OutboxItem, RetryPolicy
from mailbeacon.agent.sending.upstream import Credentials, Upstream
from mailbeacon.agent.settings.mail_urls import parse_upstream
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.profile import Profile
from tests.helpers.agent_listener import Listener, relay_runtime
from tests.helpers.agent_process import send_through_relay
from tests.helpers.mailhost import PASSWORD, PASSWORD_USER, MailHost, running_mailhost
from tests.helpers.net import free_port
from tests.helpers.oidc import USER, Provider, running_provider
from tests.helpers.oidc_login import ProviderTokens, revoke, sign_in
from tests.helpers.smtp import SmtpSink

pytestmark = [pytest.mark.needs_program("dovecot"), pytest.mark.needs_program("node")]

OTHER = "bob@example.test"
USERS = {USER: "alice-pw", OTHER: "bob-pw"}
MESSAGE = b"Message-ID: <oauth-1@x.example>\r\nSubject: token\r\n\r\nHello\r\n"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider(users=USERS) as running:
        yield running


@pytest.fixture(scope="module", params=["oauthbearer", "xoauth2"])
def one_mechanism(request: pytest.FixtureRequest, provider: Provider) -> Iterator[MailHost]:
    with running_mailhost(provider, token_mechanisms=(request.param,)) as running:
        yield running


@pytest.fixture(scope="module")
def both_hosted(provider: Provider) -> Iterator[MailHost]:
    with running_mailhost(provider) as running:
        yield running


@pytest.fixture
def both(both_hosted: MailHost) -> MailHost:
    """The mail host offering both token mechanisms, its sink emptied."""
    return emptied(both_hosted)


@pytest.fixture
def host(one_mechanism: MailHost) -> MailHost:
    """A mail host offering one token mechanism, its sink emptied."""
    return emptied(one_mechanism)


def emptied(host: MailHost) -> MailHost:
    # Dovecot takes seconds to stop, so the hosts live per module and the tests
    # share them; each starts with an empty sink.
    with host.sink.handler.cond:
        host.sink.handler.received.clear()
    return host


def upstream(host: MailHost, credentials: Credentials | None) -> Upstream:
    url = parse_upstream(f"smtp://127.0.0.1:{host.submission_port}")
    return Upstream(url, lambda: credentials, timeout=10)


async def deliver(host: MailHost, credentials: Credentials) -> None:
    sender = upstream(host, credentials)
    try:
        result = await sender.send(credentials.user, ["b@y.example"], MESSAGE)
    finally:
        await sender.close()
    assert result.refused == {}


def logins(host: MailHost, method: str) -> int:
    return host.log().count(f"submission-login: Info: Login: user=<{USER}>, method={method}")


async def test_a_token_login_delivers_to_the_sink(host: MailHost, provider: Provider) -> None:
    [mechanism] = host.token_mechanisms
    before = logins(host, mechanism.upper())
    tokens = ProviderTokens(provider)
    await deliver(host, Credentials(USER, bearer=tokens))
    [got] = await host.sink.until(1)
    assert got.data.endswith(b"\r\n\r\nHello\r\n") and got.rcpt_tos == ("b@y.example",)
    assert logins(host, mechanism.upper()) == before + 1
    assert tokens.invalidated == []


async def test_a_token_too_long_for_the_auth_line_goes_after_the_334(
    host: MailHost, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Long tokens (Microsoft's run to kilobytes) may not ride on the AUTH line (RFC 4954 4)."""
    monkeypatch.setattr(upstream_module, "_MAX_COMMAND_LINE", 40)
    await deliver(host, Credentials(USER, bearer=ProviderTokens(provider)))
    assert len(await host.sink.until(1)) == 1


async def test_a_server_without_token_logins_gets_a_sentence(provider: Provider) -> None:
    with SmtpSink(user=PASSWORD_USER, password=PASSWORD) as sink:
        url = parse_upstream(f"smtp://127.0.0.1:{sink.port}")
        credentials = Credentials(USER, bearer=ProviderTokens(provider))
        check = await Upstream(url, lambda: credentials, timeout=10).test_connection()
    assert not check.ok
    assert "does not offer a sign-in with a token (XOAUTH2 or OAUTHBEARER)" in check.message


async def test_oauthbearer_is_chosen_when_both_are_offered(
    both: MailHost, provider: Provider
) -> None:
    before = logins(both, "OAUTHBEARER")
    await deliver(both, Credentials(USER, bearer=ProviderTokens(provider)))
    await both.sink.until(1)
    assert logins(both, "OAUTHBEARER") == before + 1 and logins(both, "XOAUTH2") == 0


@pytest.mark.expect_log("refused the")
async def test_a_revoked_token_is_invalidated_and_a_fresh_one_delivers(
    host: MailHost, provider: Provider
) -> None:
    revoked = (await asyncio.to_thread(sign_in, provider)).access_token
    await asyncio.to_thread(revoke, provider, revoked)
    tokens = ProviderTokens(provider, first=(revoked,))
    await deliver(host, Credentials(USER, bearer=tokens))
    await host.sink.until(1)
    assert tokens.invalidated == [revoked]
    assert len(tokens.handed_out) == 2 and tokens.handed_out[1] != revoked


@pytest.mark.expect_log("refused the")
async def test_a_token_for_another_user_is_refused_with_a_sentence(
    both: MailHost, provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = ProviderTokens(provider, USER, sign_in_as=OTHER)
    with pytest.raises(DeliveryError) as caught:
        await deliver(both, Credentials(USER, bearer=tokens))
    error = caught.value
    assert error.connection and not error.permanent
    assert f"Sign in again with the account {USER}" in error.reply
    assert "the sign-in token was not accepted" in error.reply
    # Invalidated, retried once with a fresh token, refused again: no third try.
    assert len(tokens.invalidated) == 2 and tokens.invalidated[0] != tokens.invalidated[1]
    assert both.sink.received == []
    assert "attempt 2 of 2" in caplog.text
    assert all(token not in caplog.text for token in tokens.handed_out)


async def test_a_password_user_still_logs_in_with_plain(both: MailHost) -> None:
    await deliver(both, Credentials(PASSWORD_USER, PASSWORD))
    [got] = await both.sink.until(1)
    assert got.mail_from == PASSWORD_USER
    assert f"user=<{PASSWORD_USER}>, method=PLAIN" in both.log()


async def test_a_token_is_not_taken_as_a_password(both: MailHost, provider: Provider) -> None:
    token = (await asyncio.to_thread(sign_in, provider)).access_token
    check = await upstream(both, Credentials(USER, token)).test_connection()
    assert not check.ok and "refused the user name or password" in check.message


async def test_signed_out_mail_waits_in_the_outbox_then_goes(
    both: MailHost, provider: Provider, tmp_path: Path
) -> None:
    tokens = ProviderTokens(provider, signed_out=True)
    sender = upstream(both, Credentials(USER, bearer=tokens))
    policy = RetryPolicy(base=30, cap=60, jitter=0)  # no retry unless "Retry now"
    box = Outbox(tmp_path / "outbox", sender, policy=policy)
    await box.start()
    try:
        await box.enqueue(OutboxItem(USER, ("b@y.example",), MESSAGE))
        await box.wait_idle(10)
        assert [item.state.attempts for item in box.pending()] == [1]
        assert box.blocked_reason is not None
        assert box.blocked_reason.startswith(f"Sign in again with the account {USER}")
        assert box.blocked_reason.lower().count("sign in again") == 1
        assert "(the provider no longer accepts the saved sign-in)" in box.blocked_reason
        assert box.failed() == [] and both.sink.received == []
        tokens.signed_out = False  # the rep signed in again
        box.retry_now()
        await box.wait_drained(10)
    finally:
        await box.stop()
        await sender.close()
    assert (await both.sink.until(1))[0].data.endswith(b"Hello\r\n")


async def test_signed_out_is_a_connection_error_not_a_bounce(
    both: MailHost, provider: Provider
) -> None:
    check = await upstream(
        both, Credentials(USER, bearer=ProviderTokens(provider, signed_out=True))
    ).test_connection()
    assert not check.ok and check.message.startswith("Sign in again")
    assert check.message.lower().count("sign in again") == 1


@pytest.mark.expect_log("refused the")
async def test_an_expired_token_is_replaced_by_a_fresh_one(tmp_path: Path) -> None:
    with (
        running_provider(access_token_ttl=3, users=USERS) as short,
        running_mailhost(short) as host,
    ):
        expired = (await asyncio.to_thread(sign_in, short)).access_token
        await asyncio.to_thread(_until_inactive, short, expired)
        tokens = ProviderTokens(short, first=(expired,))
        await deliver(host, Credentials(USER, bearer=tokens))
        await host.sink.until(1)
    assert tokens.invalidated == [expired] and len(tokens.handed_out) == 2


def _until_inactive(provider: Provider, token: str, within: float = 15.0) -> None:
    """Wait (bounded) until the provider says the token has expired."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        answer = httpx.post(provider.introspection_url, data={"token": token}, timeout=5)
        if answer.json().get("active") is False:
            return
        time.sleep(0.2)  # bounded: waiting for the provider's clock to pass the expiry
    raise AssertionError("the access token did not expire in time")


@pytest.mark.expect_log("Sign in again")
async def test_the_agent_s_status_says_sign_in_again_once(both: MailHost, tmp_path: Path) -> None:
    """The sign-in's own sentence already says "Sign in again …": the status shows it
    as it is, not wrapped in another "Sign in again: …" (the rep read it twice)."""
    profile = Profile.at(tmp_path / "agent")
    settings = Settings()
    settings.set("server.listen", "127.0.0.1:0")
    settings.set("account.auth", "oauth2")  # and no sign-in provider set up
    settings.set("account.email", USER)
    settings.save(profile.config_file)
    relay_port = free_port()
    listener = Listener()
    runtime = relay_runtime(
        profile, relay_port, f"smtp://127.0.0.1:{both.submission_port}", listener
    )
    await runtime.start()
    try:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = USER, "b@y.example", "Hi"
        message.set_content("Hello.\n")
        await asyncio.to_thread(send_through_relay, relay_port, message)
        await listener.until(
            lambda: any(n.type == "sign_in_required" for n in listener.notifications)
        )
        detail = runtime.status_report().sending.detail
    finally:
        await runtime.stop()
    assert detail == (
        f"127.0.0.1:{both.submission_port} is not taking mail: Sign in again: no sign-in "
        "provider or client ID is set (Settings → Account)."
    )
