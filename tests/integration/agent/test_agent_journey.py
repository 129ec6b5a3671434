"""The headless agent end to end: a real SMTP client sends through the relay, the
upstream sink receives a tracked email, a recipient on another address opens it and
clicks, and the agent prints notifications naming that recipient (docs/architecture.md,
docs/interfaces.md)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import json
import re
import smtplib
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from mailbeacon.core.botlists import Thresholds
from mailbeacon.core.classify import Context, Decision, Hit, classify
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.server.config import ServerConfig
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers import dovecot
from tests.helpers.agent_process import (
    AgentProcess,
    agent_with_imap,
    offer_q4,
    run_cli,
    send_through_relay,
)
from tests.helpers.net import free_port
from tests.helpers.smtp import SmtpSink

RELAY_PASSWORD = "relay-secret"
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
PIXEL = re.compile(r'src="(http://127\.0\.0\.1:\d+/o/[A-Za-z0-9_-]+\.gif)"')
LINK = re.compile(r'href="(http://127\.0\.0\.1:\d+/c/[A-Za-z0-9_-]+)"')
PRICES = re.compile(r'href="(http://127\.0\.0\.1:\d+/c/[A-Za-z0-9_-]+)"[^>]*>our prices</a>')


def no_human_delay(hit: Hit, context: Context) -> Decision:
    """The shipped rules, without the "faster than a person" delay (the test is fast)."""
    fast = Thresholds(min_open_s=0, min_click_s=0)
    return classify(hit, replace(context, thresholds=fast))


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TrackingServer]:
    srv = TrackingServer(ServerConfig(db_path=tmp_path / "server.db"), classifier=no_human_delay)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as s:
        yield s


async def start_agent(
    tmp_path: Path, enrollment: Enrollment, upstream_port: int, relay_port: int
) -> AgentProcess:
    return await AgentProcess(
        tmp_path / "agent", tmp_path / "keyring.json",
        "--enroll", enrollment.encode(),
        "--smtp-listen", f"127.0.0.1:{relay_port}",
        "--upstream", f"smtp://127.0.0.1:{upstream_port}",
        "--relay-password", RELAY_PASSWORD,
    ).start()


def html_part(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    body = message.get_body(("html",))  # type: ignore[attr-defined]
    assert body is not None, "no HTML part reached the upstream"
    return str(body.get_content())


def html_bytes(raw: bytes) -> bytes:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    body = message.get_body(("html",))  # type: ignore[attr-defined]
    assert body is not None
    payload = body.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload


async def activity_once_it_has(
    profile: Path, keyring_file: Path, count: int
) -> list[dict[str, object]]:
    """``activity --json`` once it lists ``count`` events (each read is a new process)."""
    for _ in range(100):  # bounded: each try takes a fraction of a second
        code, out, err = await run_cli(profile, keyring_file, "activity", "--json")
        assert code == 0, err
        events: list[dict[str, object]] = json.loads(out)
        if len(events) >= count:
            return events
    raise AssertionError(f"activity never reached {count} events")


def recipient_client() -> httpx.AsyncClient:
    """A recipient's mail viewer: another host than the rep's (127.0.0.9)."""
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.9")
    return httpx.AsyncClient(transport=transport, headers={"User-Agent": THUNDERBIRD})


@pytest.mark.needs_program("swaks")
async def test_swaks_to_open_and_click_notifications_and_logged_copy(
    tmp_path: Path, server: TrackingServer, sink: SmtpSink
) -> None:
    enrollment = await server.add_user("rep")
    relay_port = free_port()
    agent = await start_agent(tmp_path, enrollment, sink.port, relay_port)
    try:
        (tmp_path / "body.html").write_text(
            '<html><body><p>Dzień dobry, see <a href="https://shop.example/pricing?q=1&amp;x=2">'
            "our prices</a>.</p></body></html>"
        )
        (tmp_path / "oferta.pdf").write_bytes(PDF)
        swaks = await asyncio.create_subprocess_exec(
            "swaks", "--server", f"127.0.0.1:{relay_port}", "--auth", "PLAIN",
            "--auth-user", "mailbeacon", "--auth-password", RELAY_PASSWORD,
            "--from", "rep@rep.example", "--to", "alicja@client.example",
            "--header", "Subject: Oferta Q4", "--header", "X-MailBeacon-Log: yes",
            "--attach-type", "text/html", "--attach-body", f"@{tmp_path / 'body.html'}",
            "--attach-type", "application/pdf", "--attach-name", "oferta.pdf",
            "--attach", f"@{tmp_path / 'oferta.pdf'}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        async with asyncio.timeout(30):
            transcript, _ = await swaks.communicate()
        assert swaks.returncode == 0, transcript.decode()

        [delivered] = await sink.until(1)
        assert delivered.rcpt_tos == ("alicja@client.example",)
        assert b"X-MailBeacon" not in delivered.data
        html = html_part(delivered.data)
        [pixel] = PIXEL.findall(html)
        [link] = PRICES.findall(html)
        # swaks labels the part text/html without a charset: its bytes must pass unchanged.
        assert "Dzień dobry".encode() in html_bytes(delivered.data)

        async with recipient_client() as viewer:
            gif = await viewer.get(pixel)
            assert gif.status_code == 200 and gif.headers["content-type"] == "image/gif"
            opened = await agent.notification(within=5)
            assert opened["type"] == "open"
            assert opened["recipient"] == "alicja@client.example"
            assert opened["subject"] == "Oferta Q4" and not opened["anonymous"]
            assert "Thunderbird" in opened["body"]

            redirect = await viewer.get(link)
            assert redirect.status_code == 302
            assert redirect.headers["location"] == "https://shop.example/pricing?q=1&x=2"
            clicked = await agent.notification(within=5)
            assert clicked["type"] == "click" and clicked["url"].startswith("https://shop.")
    finally:
        assert await agent.stop() == 0

    code, out, err = await run_cli(
        tmp_path / "agent", tmp_path / "keyring.json", "record", "alicja@client.example", "--json"
    )
    assert code == 0, err
    record = json.loads(out)
    assert record["last_open"] and record["last_click"]
    [sent] = [e for e in record["timeline"] if e["kind"] == "sent"]
    [attachment] = sent["copy"]["attachments"]
    assert attachment["filename"] == "oferta.pdf"
    assert attachment["sha256"] == hashlib.sha256(PDF).hexdigest()


async def test_untracked_and_unlogged_by_control_address(
    tmp_path: Path, server: TrackingServer, sink: SmtpSink
) -> None:
    enrollment = await server.add_user("rep")
    relay_port = free_port()
    agent = await start_agent(tmp_path, enrollment, sink.port, relay_port)
    try:
        message = EmailMessage()
        message["From"] = "rep@rep.example"
        message["To"] = "jan@client.example"
        message["Subject"] = "Not tracked"
        message.add_alternative('<p><a href="https://a.example/">A</a></p>', subtype="html")

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", relay_port, timeout=30) as client:
                client.login("mailbeacon", RELAY_PASSWORD)
                client.send_message(
                    message, to_addrs=["jan@client.example", "notrack@mailbeacon.invalid"]
                )

        await asyncio.to_thread(send)
        [delivered] = await sink.until(1)
        assert delivered.rcpt_tos == ("jan@client.example",)
        body = delivered.data
        assert b"mailbeacon.invalid" not in body
        assert not PIXEL.search(html_part(body)) and not LINK.search(html_part(body))
    finally:
        assert await agent.stop() == 0


async def test_accepted_mail_survives_sigkill_and_is_delivered_once(
    tmp_path: Path, server: TrackingServer
) -> None:
    enrollment = await server.add_user("rep")
    relay_port, upstream_port = free_port(), free_port()
    agent = await start_agent(tmp_path, enrollment, upstream_port, relay_port)

    def send_all() -> None:
        with smtplib.SMTP("127.0.0.1", relay_port, timeout=30) as client:
            client.login("mailbeacon", RELAY_PASSWORD)
            for n in range(50):
                message = EmailMessage()
                message["From"] = "rep@rep.example"
                message["To"] = f"r{n}@client.example"
                message["Subject"] = f"Message {n}"
                message["Message-ID"] = f"<m{n}@rep.example>"
                message.add_alternative(f"<p>Hello {n}</p>", subtype="html")
                client.send_message(message)

    await asyncio.to_thread(send_all)  # every message answered 250 while upstream is down
    await agent.kill()

    with SmtpSink(port=upstream_port) as upstream:
        agent = await start_agent(tmp_path, enrollment, upstream_port, relay_port)
        try:
            await upstream.until(50, within=60)
        finally:
            await agent.stop()
        by_id = upstream.messages_by_id()
    assert sorted(by_id) == sorted(f"<m{n}@rep.example>" for n in range(50))
    assert all(len(copies) == 1 for copies in by_id.values())


@pytest.mark.needs_program("dovecot")
async def test_a_reply_in_the_reps_inbox_notifies_through_the_agent(
    tmp_path: Path, server: TrackingServer, sink: SmtpSink
) -> None:
    enrollment = await server.add_user("rep")
    relay_port = free_port()
    with dovecot.running_dovecot() as imap:
        agent = await agent_with_imap(
            tmp_path, enrollment.encode(), relay_port, sink.port, imap.port,
            dovecot.USER, dovecot.PASSWORD,
        ).start()
        try:
            await asyncio.to_thread(send_through_relay, relay_port, offer_q4())
            await sink.until(1)
            await agent.wait_log("first look at", within=15)  # the watcher knows where to start
            reply = (
                b"From: Alicja Nowak <alicja@client.example>\r\nTo: rep@example.net\r\n"
                b"Subject: Re: Oferta Q4\r\nMessage-ID: <re-1@client.example>\r\n"
                b"In-Reply-To: <oferta-q4@example.net>\r\n\r\nSounds good.\r\n"
            )
            await asyncio.to_thread(imap.append, reply)
            replied = await agent.notification(within=10)
        finally:
            await agent.stop()
    assert replied["type"] == "reply"
    assert replied["recipient"] == "alicja@client.example"
    assert "replied" in replied["title"] and "Oferta Q4" in replied["title"]


async def test_a_pause_saved_in_the_settings_holds_notifications_at_once(
    tmp_path: Path, server: TrackingServer, sink: SmtpSink
) -> None:
    enrollment = await server.add_user("rep")
    relay_port = free_port()
    profile, keyring_file = tmp_path / "agent", tmp_path / "keyring.json"
    await run_cli(profile, keyring_file, "config", "set", "tracking.settle_seconds", "0")
    agent = await start_agent(tmp_path, enrollment, sink.port, relay_port)
    try:

        def send(n: int) -> None:
            message = EmailMessage()
            message["From"] = "rep@rep.example"
            message["To"] = f"p{n}@client.example"
            message["Subject"] = f"Pause {n}"
            message.add_alternative(f"<p>Hi {n}</p>", subtype="html")
            with smtplib.SMTP("127.0.0.1", relay_port, timeout=30) as client:
                client.login("mailbeacon", RELAY_PASSWORD)
                client.send_message(message)

        for n in (1, 2):
            await asyncio.to_thread(send, n)
        first, second = await sink.until(2)
        code, _out, err = await run_cli(
            profile, keyring_file, "config", "set", "notify.paused_until", "2999-01-01T00:00:00Z"
        )
        assert code == 0, err
        async with recipient_client() as viewer:
            [held] = PIXEL.findall(html_part(first.data))
            await viewer.get(held)
            [event] = await activity_once_it_has(profile, keyring_file, 1)
            assert event["type"] == "open" and not event["notified"]  # recorded, held

            await run_cli(profile, keyring_file, "config", "set", "notify.paused_until", "")
            [shown] = PIXEL.findall(html_part(second.data))
            await viewer.get(shown)
            note = await agent.notification(within=5)
        assert note["subject"] == "Pause 2"  # the paused open never notified
    finally:
        await agent.stop()
