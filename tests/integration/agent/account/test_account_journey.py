"""The rep's mail account as a rep (or a script) sets it up: ``mailbeacon account …``.

Real parts only: the certified OpenID provider (npm ``oidc-provider``), Dovecot serving
IMAP and SUBMISSION and checking bearer tokens at the provider, headless Chromium as
the rep's browser (through ``BROWSER``), dnsmasq as the DNS server, and the real
``mailbeacon`` processes. See docs/rep-guide.md, "Your mail account".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.helpers import browser
from tests.helpers.agent_process import AgentProcess, run_cli
from tests.helpers.caddy import running_caddy
from tests.helpers.dnsmasq import Srv, Zone, running_dnsmasq
from tests.helpers.mailhost import PASSWORD, PASSWORD_USER, MailHost, running_mailhost
from tests.helpers.net import free_port
from tests.helpers.oidc import CLIENT_ID, USER, Provider, running_provider

pytestmark = [
    pytest.mark.needs_program("dovecot"),
    pytest.mark.needs_program("node"),
    pytest.mark.timeout(240),
]

RELAY_PASSWORD = "relay-secret-for-tests"
APPEND_ONLY = "append-only"  # lets the test APPEND a reply into the OAuth user's inbox


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider(access_token_ttl=300) as running:
        yield running


@pytest.fixture
def mailhost(provider: Provider) -> Iterator[MailHost]:
    users = {PASSWORD_USER: PASSWORD, USER: APPEND_ONLY}
    with running_mailhost(provider, users=users) as host:
        yield host


def manual_servers(host: MailHost) -> list[str]:
    return [
        "--smtp-host", "127.0.0.1", "--smtp-port", str(host.submission_port),
        "--smtp-security", "none",
        "--imap-host", "127.0.0.1", "--imap-port", str(host.imap_port),
        "--imap-security", "none",
    ]  # fmt: skip


async def cli(tmp_path: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    if stdin is None:
        return await run_cli(tmp_path / "profile", tmp_path / "keyring.json", *args)
    # --password-stdin: the password never appears in the process list.
    import sys

    from tests.helpers.agent_process import REPO, subprocess_env

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mailbeacon", "--profile", str(tmp_path / "profile"), *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=subprocess_env(tmp_path / "keyring.json"), cwd=REPO,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await proc.communicate(stdin.encode())
    return proc.returncode or 0, out.decode(), err.decode()


async def test_password_setup_logs_in_to_both_servers_and_saves_only_then(
    tmp_path: Path, mailhost: MailHost
) -> None:
    code, _out, err = await cli(
        tmp_path, "account", "setup", PASSWORD_USER, "--password-stdin",
        *manual_servers(mailhost), stdin="wrong-password\n",
    )  # fmt: skip
    assert code == 1
    assert "password" in err.lower() and "Traceback" not in err
    _, shown, _ = await cli(tmp_path, "account", "show", "--json")
    assert json.loads(shown)["email"] == ""  # nothing half-saved

    code, out, err = await cli(
        tmp_path, "account", "setup", PASSWORD_USER, "--name", "Pat Test", "--password-stdin",
        *manual_servers(mailhost), "--json", stdin=f"{PASSWORD}\n",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["method"] == "password" and result["source"] == "manual"
    _, shown, _ = await cli(tmp_path, "account", "show", "--json")
    account = json.loads(shown)
    assert account["email"] == PASSWORD_USER and account["name"] == "Pat Test"
    assert account["smtp"] == f"smtp://127.0.0.1:{mailhost.submission_port}"
    assert account["imap"].startswith("imap://pat%40example.test@127.0.0.1:")
    assert account["password_set"] and not account["signed_in"]
    assert PASSWORD not in (tmp_path / "profile").joinpath("config", "config.json").read_text()


async def test_discover_names_the_source_and_fails_within_the_deadline(tmp_path: Path) -> None:
    zone = Zone(
        mx=[("acme-ms.test", "acme-ms-test.mail.protection.outlook.com", 0)],
        srv=[Srv("_submission._tcp.srvmail.test", "mail.srvmail.test", 587, 0, 1)],
        hosts={"mail.srvmail.test": "127.0.0.10"},
    )
    with running_dnsmasq(zone, tmp_path / "dnsmasq.log") as dns:
        env = {"MAILBEACON_NAMESERVER": dns.env}
        found = {}
        for email in ("rep@gmail.com", "rep@acme-ms.test", "rep@srvmail.test"):
            code, out, err = await _cli_env(tmp_path, env, "account", "discover", email, "--json")
            assert code == 0, err
            found[email] = json.loads(out)
        started = asyncio.get_running_loop().time()
        code, _out, err = await _cli_env(
            tmp_path, env, "account", "discover", "rep@nothing-here.test", "--json"
        )
        took = asyncio.get_running_loop().time() - started
    assert found["rep@gmail.com"]["source"] == "preset"
    assert found["rep@acme-ms.test"]["source"] == "mx"
    assert found["rep@acme-ms.test"]["provider"] == "microsoft"
    assert "oauth2" in found["rep@acme-ms.test"]["auth"]
    assert found["rep@srvmail.test"]["source"] == "srv"
    assert found["rep@srvmail.test"]["smtp"]["port"] == 587
    assert code == 1 and "No mail servers were found" in err
    assert took < 15  # 10 s deadline plus the interpreter's start


async def _cli_env(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    import os

    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        return await run_cli(tmp_path / "profile", tmp_path / "keyring.json", *args)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def tracked_email(subject: str, message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = USER
    message["To"] = "Alicja Nowak <alicja@client.example>"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message.add_alternative("<p>Our offer, as promised.</p>", subtype="html")
    return message


def send_through_relay(port: int, message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.login("mailbeacon", RELAY_PASSWORD)
        client.send_message(message)


@pytest.mark.needs_program("chromium")
@pytest.mark.needs_program("dnsmasq")
@pytest.mark.needs_program("caddy")
async def test_oauth_journey_sign_in_send_reply_revoke_and_sign_in_again(tmp_path: Path) -> None:
    """The rep types only the address: the servers come from the domain's autoconfig
    file, the sign-in from the provider the administrator set (oauth.issuer)."""
    with contextlib.ExitStack() as provider_stack:
        provider = provider_stack.enter_context(running_provider())
        users = {PASSWORD_USER: PASSWORD, USER: APPEND_ONLY}
        with (
            running_mailhost(provider, users=users) as mailhost,
            _autoconfig_for(tmp_path, mailhost) as env,
            _environment(env),
        ):
            await _oauth_journey(tmp_path, provider_stack, provider, mailhost)


OAUTH_AUTOCONFIG = """<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1"><emailProvider id="example.test">
  <domain>example.test</domain>
  <incomingServer type="imap"><hostname>127.0.0.1</hostname><port>{imap}</port>
    <socketType>plain</socketType><authentication>OAuth2</authentication></incomingServer>
  <outgoingServer type="smtp"><hostname>127.0.0.1</hostname><port>{smtp}</port>
    <socketType>plain</socketType><authentication>OAuth2</authentication></outgoingServer>
</emailProvider></clientConfig>
"""


@contextlib.contextmanager
def _autoconfig_for(tmp_path: Path, mailhost: MailHost) -> Iterator[dict[str, str]]:
    """dnsmasq names autoconfig.example.test; Caddy serves its file over HTTPS."""
    site = tmp_path / "autoconfig-site"
    (site / "mail").mkdir(parents=True)
    (site / "mail" / "config-v1.1.xml").write_text(
        OAUTH_AUTOCONFIG.format(imap=mailhost.imap_port, smtp=mailhost.submission_port)
    )
    zone = Zone(hosts={"autoconfig.example.test": "127.0.0.20"})
    with (
        running_dnsmasq(zone, tmp_path / "dnsmasq.log") as dns,
        running_caddy(tmp_path / "caddy", {"autoconfig.example.test": site}) as caddy,
    ):
        yield {"MAILBEACON_NAMESERVER": dns.env, "SSL_CERT_FILE": str(caddy.root_ca)}


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    import os

    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


async def _oauth_journey(
    tmp_path: Path, stack: contextlib.ExitStack, provider: Provider, mailhost: MailHost
) -> None:
    for key, value in (
        ("oauth.issuer", provider.issuer), ("oauth.client_id", CLIENT_ID),
        ("oauth.scopes", "openid email offline_access mail"),
        ("server.listen", "127.0.0.1:0"),
    ):  # fmt: skip
        code, _out, err = await cli(tmp_path, "config", "set", key, value)
        assert code == 0, err
    with browser.as_system_browser():
        code, out, err = await cli(tmp_path, "account", "setup", USER, "--oauth", "--json")
    assert code == 0, err
    assert json.loads(out)["method"] == "oauth2"
    assert json.loads(out)["source"] == "autoconfig"  # no server typed
    _, shown, _ = await cli(tmp_path, "account", "show", "--json")
    assert json.loads(shown)["signed_in"] is True
    assert "oauth_refresh_token" in (tmp_path / "keyring.json").read_text()
    assert not any(
        "refresh_token" in path.read_text(errors="replace")
        for path in (tmp_path / "profile").rglob("*") if path.is_file()
    )  # fmt: skip

    relay_port = free_port()
    agent = await AgentProcess(
        tmp_path / "profile", tmp_path / "keyring.json",
        "--smtp-listen", f"127.0.0.1:{relay_port}", "--relay-password", RELAY_PASSWORD,
    ).start()  # fmt: skip
    try:
        # 1. Mail goes out through SUBMISSION, logged in with the access token.
        await asyncio.to_thread(
            send_through_relay, relay_port, tracked_email("Oferta Q4", "<q4@example.test>")
        )
        [delivered] = await mailhost.sink.until(1, within=30)
        assert b"/o/" in delivered.data  # tracked: the pixel went in
        # 2. A reply in the rep's inbox is noticed over IMAP with the same sign-in.
        await agent.wait_log("first look at", within=30)
        reply = (
            b"From: Alicja Nowak <alicja@client.example>\r\nTo: " + USER.encode() + b"\r\n"
            b"Subject: Re: Oferta Q4\r\nMessage-ID: <re-q4@client.example>\r\n"
            b"In-Reply-To: <q4@example.test>\r\n\r\nSounds good.\r\n"
        )
        await asyncio.to_thread(mailhost.append, reply, user=USER)
        replied = await agent.notification(within=20)
        assert replied["type"] == "reply" and "Oferta Q4" in replied["title"]
        # 3. The provider forgets every sign-in (a restart: its tokens live in memory),
        #    and the mail server ends the sessions logged in before: "Sign in again".
        port = provider.port
        await asyncio.to_thread(_restart, stack, port)
        await asyncio.to_thread(mailhost.stop)
        await asyncio.to_thread(mailhost.start)
        told = await _notification_of(agent, "sign_in_required", within=60)  # IMAP's login
        assert told["title"] == "Sign in again"
        assert "outbox" in told["body"]
        await asyncio.to_thread(
            send_through_relay, relay_port, tracked_email("Follow-up", "<fu@example.test>")
        )
        await agent.wait_log("deferred", within=30)  # the outbox tried, and keeps it
        assert len(mailhost.sink.received) == 1  # waiting, not bounced
        # 4. Signing in again sends what waited, without restarting anything.
        with browser.as_system_browser():
            code, _out, err = await cli(tmp_path, "account", "setup", USER, "--oauth")
        assert code == 0, err
        got = await mailhost.sink.until(2, within=60)
    finally:
        await agent.stop()
    assert b"Follow-up" in got[1].data


def _restart(stack: contextlib.ExitStack, port: int) -> None:
    """Stop the provider and start a fresh one on the same port (same issuer URL)."""
    stack.close()
    stack.enter_context(running_provider(port=port))


async def _notification_of(agent: AgentProcess, kind: str, within: float) -> dict[str, object]:
    async with asyncio.timeout(within):
        while True:
            line = await agent.notification(within=within)
            if line["type"] == kind:
                return line


@pytest.mark.needs_program("chromium")
async def test_device_sign_in_on_a_headless_machine(tmp_path: Path) -> None:
    """``--device`` prints where to go and the code on stderr, and waits for the rep."""
    import re
    import sys

    from tests.helpers.agent_process import REPO, subprocess_env

    with running_provider() as provider, running_mailhost(provider) as mailhost:
        for key, value in (("oauth.issuer", provider.issuer), ("oauth.client_id", CLIENT_ID),
                           ("oauth.scopes", "openid email offline_access mail")):  # fmt: skip
            assert (await cli(tmp_path, "config", "set", key, value))[0] == 0
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mailbeacon", "--profile", str(tmp_path / "profile"),
            "account", "setup", USER, "--oauth", "--device", *manual_servers(mailhost),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=subprocess_env(tmp_path / "keyring.json"), cwd=REPO,
        )  # fmt: skip
        assert proc.stderr is not None
        async with asyncio.timeout(60):
            line = (await proc.stderr.readline()).decode()
            found = re.search(r"open (\S+) and enter the code (\S+)", line)
            assert found, line
            await browser.confirm_device_code(found.group(1), found.group(2))
            out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "is set up (oauth2)" in out.decode()
    assert "oauth_refresh_token" in (tmp_path / "keyring.json").read_text()


async def test_a_login_name_other_than_the_address_is_used_for_both_servers(
    tmp_path: Path, mailhost: MailHost
) -> None:
    code, _out, err = await cli(
        tmp_path, "account", "setup", "patricia.test@example.test", "--login", PASSWORD_USER,
        "--password-stdin", *manual_servers(mailhost), stdin=f"{PASSWORD}\n",
    )  # fmt: skip
    assert code == 0, err
    _, shown, _ = await cli(tmp_path, "account", "show", "--json")
    account = json.loads(shown)
    assert account["email"] == "patricia.test@example.test"
    assert account["imap"].startswith("imap://pat%40example.test@")
    _, user, _ = await cli(tmp_path, "config", "get", "upstream.user")
    assert user.strip() == PASSWORD_USER
