"""IMAP logins with OAuth tokens (AUTHENTICATE XOAUTH2 / OAUTHBEARER) against Dovecot.

Dovecot checks every token at the real OpenID provider's introspection endpoint;
the token source signs in through the provider's device flow
(tests/helpers/oidc_login.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from mailbeacon.agent.mailbox.imap_client import ImapClient, TokenRefused
from mailbeacon.agent.mailbox.session import (
    CannotLogIn,
    ImapAccount,
    Trouble,
    describe_failure,
    imap_session,
)
from mailbeacon.agent.settings.mail_urls import MailServerUrl, parse_mail_url
from mailbeacon.core import sasl
from tests.helpers.mailhost import PASSWORD, PASSWORD_USER, MailHost, running_mailhost
from tests.helpers.oidc import USER, Provider, running_provider
from tests.helpers.oidc_login import ProviderTokens, revoke, sign_in

pytestmark = [pytest.mark.needs_program("dovecot"), pytest.mark.needs_program("node")]

OTHER = "bob@example.test"
USERS = {USER: "alice-pw", OTHER: "bob-pw"}


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider(users=USERS) as running:
        yield running


@pytest.fixture(scope="module", params=["oauthbearer", "xoauth2"])
def host(request: pytest.FixtureRequest, provider: Provider) -> Iterator[MailHost]:
    """A mail host offering one token mechanism."""
    with running_mailhost(provider, token_mechanisms=(request.param,)) as running:
        yield running


def url(host: MailHost, user: str = USER) -> MailServerUrl:
    return parse_mail_url(f"imap://{user.replace('@', '%40')}@127.0.0.1:{host.imap_port}", "imap")


def token_account(host: MailHost, tokens: ProviderTokens) -> ImapAccount:
    def no_password() -> str | None:
        raise AssertionError("a token account must not read the password")

    return ImapAccount(url(host), no_password, bearer=tokens)


def logins(host: MailHost, user: str = USER) -> list[str]:
    return [
        line.partition("method=")[2].partition(",")[0]
        for line in host.log().splitlines()
        if f"imap-login: Info: Login: user=<{user}>" in line
    ]


async def test_a_token_login_opens_the_inbox(host: MailHost, provider: Provider) -> None:
    before = len(logins(host))
    tokens = ProviderTokens(provider)
    async with imap_session(token_account(host, tokens)) as client:
        inbox = await client.select("INBOX")
    assert inbox.uidvalidity > 0 and not inbox.read_only
    assert logins(host)[before:] == [host.token_mechanisms[0].upper()]
    assert tokens.invalidated == []


async def test_the_initial_response_also_goes_after_the_servers_prompt(
    host: MailHost, provider: Provider
) -> None:
    """Without SASL-IR the response waits for the server's first "+"."""
    [mechanism] = host.token_mechanisms
    token = (await asyncio.to_thread(sign_in, provider)).access_token
    client = await ImapClient.connect("127.0.0.1", host.imap_port, "none")
    try:
        client.capabilities = client.capabilities - {"SASL-IR"}
        chosen = sasl.choose_mechanism([mechanism])
        assert chosen is not None
        await client.authenticate_bearer(USER, token, chosen, "127.0.0.1", host.imap_port)
        assert (await client.examine("INBOX")).uidvalidity > 0
    finally:
        await client.logout()


async def test_a_refused_token_carries_the_servers_reason(
    host: MailHost, provider: Provider
) -> None:
    [mechanism] = host.token_mechanisms
    chosen = sasl.choose_mechanism([mechanism])
    assert chosen is not None
    client = await ImapClient.connect("127.0.0.1", host.imap_port, "none")
    try:
        with pytest.raises(TokenRefused) as caught:
            await client.authenticate_bearer(USER, "not-a-token", chosen, "h", 1)
        # The error challenge was answered: the connection still takes commands.
        await client.noop()
    finally:
        await client.logout()
    assert caught.value.refusal.token_rejected
    assert caught.value.refusal.status == ("invalid_token" if chosen == sasl.OAUTHBEARER else "401")


@pytest.mark.expect_log("refused the")
async def test_a_revoked_token_is_invalidated_and_a_fresh_one_logs_in(
    host: MailHost, provider: Provider
) -> None:
    revoked = (await asyncio.to_thread(sign_in, provider)).access_token
    await asyncio.to_thread(revoke, provider, revoked)
    tokens = ProviderTokens(provider, first=(revoked,))
    async with imap_session(token_account(host, tokens)) as client:
        await client.select("INBOX")
    assert tokens.invalidated == [revoked]
    assert len(tokens.handed_out) == 2 and tokens.handed_out[1] != revoked


@pytest.mark.expect_log("refused the")
async def test_a_token_for_another_user_is_refused_with_a_sentence(
    host: MailHost, provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = ProviderTokens(provider, USER, sign_in_as=OTHER)
    account = token_account(host, tokens)
    with pytest.raises(TokenRefused) as caught:
        async with imap_session(account):
            pass
    failure = describe_failure(caught.value, account.url)
    assert failure.trouble is Trouble.WRONG_PASSWORD and failure.trouble.needs_the_rep
    assert "sign in again in Settings" in failure.detail
    assert "the sign-in token was not accepted" in failure.detail
    assert len(tokens.invalidated) == 2  # one fresh token tried, then no more
    assert all(token not in caplog.text for token in tokens.handed_out)


async def test_signed_out_asks_the_rep_to_sign_in_again(
    host: MailHost, provider: Provider
) -> None:
    account = token_account(host, ProviderTokens(provider, signed_out=True))
    with pytest.raises(CannotLogIn) as caught:
        async with imap_session(account):
            pass
    failure = describe_failure(caught.value, account.url)
    assert failure.trouble is Trouble.CANNOT_LOG_IN
    assert failure.detail.startswith(f"Sign in again with the account {USER} in Settings")
    assert failure.detail.lower().count("sign in again") == 1


async def test_a_password_user_still_logs_in_with_plain(host: MailHost) -> None:
    account = ImapAccount(url(host, PASSWORD_USER), lambda: PASSWORD)
    async with imap_session(account) as client:
        assert (await client.select("INBOX")).uidvalidity > 0
    assert logins(host, PASSWORD_USER)[-1] == "PLAIN"
