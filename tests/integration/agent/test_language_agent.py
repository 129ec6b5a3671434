"""The real ``mailbeacon agent --notify jsonl`` speaks the system's language (issue 19):
under ``LANG=pl_PL.UTF-8`` its notifications are Polish, with Polish plural forms for
1, 2, 5 and 22 events in a summary; ``app.language`` set while it runs switches the
next notification without a restart; its log stays English."""

# ruff: noqa: RUF001 - Polish text: en dashes and quotation marks are the point

from __future__ import annotations

import asyncio
import re
import smtplib
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailbeacon.server.tracking_server import TrackingServer
from tests.e2e.harness import THUNDERBIRD_UA, html_of
from tests.helpers.agent_process import AgentProcess, run_cli
from tests.helpers.net import free_port
from tests.helpers.server import running_server
from tests.helpers.smtp import SmtpSink

RELAY_PASSWORD = "relay-secret-for-tests"
POLISH = {"LANG": "pl_PL.UTF-8", "LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": ""}
ROUNDS = (1, 2, 5, 22)


@pytest.fixture
async def polish_server(tmp_path: Path) -> AsyncIterator[TrackingServer]:
    """The real server; an open is a person's however soon after sending it comes."""
    async with running_server(tmp_path / "server.db", min_open_seconds=0) as running:
        yield running


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def offer(n: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "anna.kowalska@mojafirma.pl"
    message["To"] = f"odbiorca{n}@klient.example"
    message["Subject"] = f"Oferta na II kwartał nr {n}"
    message.set_content("Dzień dobry, w załączeniu oferta.\n")
    message.add_alternative("<p>Dzień dobry, w załączeniu oferta.</p>", subtype="html")
    return message


def pixel_of(raw: bytes) -> str:
    html = html_of(raw)
    start = html.index("http://", html.index("/o/") - 200)
    return html[start : html.index('"', start)]


async def open_pixel(url: str, n: int) -> None:
    """A recipient's mail client on its own loopback address loads the pixel."""
    transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{20 + n % 200}")
    async with httpx.AsyncClient(
        transport=transport, headers={"User-Agent": THUNDERBIRD_UA}, timeout=30
    ) as client:
        assert (await client.get(url)).status_code == 200


def agent_of(
    tmp_path: Path, enrollment: str, relay_port: int, sink: SmtpSink, env: dict[str, str]
) -> AgentProcess:
    return AgentProcess(
        tmp_path / "agent", tmp_path / "keyring.json",
        "--enroll", enrollment, "--smtp-listen", f"127.0.0.1:{relay_port}",
        "--upstream", f"smtp://127.0.0.1:{sink.port}", "--relay-password", RELAY_PASSWORD,
        env=env,
    )  # fmt: skip


async def summary_after(agent: AgentProcess) -> dict[str, Any]:
    """The next summary the agent prints (skipping nothing else: none is expected)."""
    note = await agent.notification(within=30)
    assert note["type"] == "summary", note
    return note


async def test_polish_system_polish_notifications_with_plural_forms(
    tmp_path: Path, polish_server: TrackingServer, sink: SmtpSink
) -> None:
    enrollment = (await polish_server.add_user("anna")).encode()
    relay_port = free_port()
    total = sum(ROUNDS)
    agent = await agent_of(tmp_path, enrollment, relay_port, sink, POLISH).start()

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", relay_port, timeout=30) as client:
            client.login("mailbeacon", RELAY_PASSWORD)
            for n in range(total):
                client.send_message(offer(n))

    await asyncio.to_thread(send)
    delivered = await sink.until(total, within=60)
    # In recipient order (the outbox may deliver in any order): pixel n is odbiorca n's.
    by_recipient = {d.rcpt_tos[0]: pixel_of(d.data) for d in delivered}
    pixels = [by_recipient[f"odbiorca{n}@klient.example"] for n in range(total)]
    await agent.stop()

    titles: dict[int, str] = {}
    bodies: dict[int, str] = {}
    used = 0
    for count in ROUNDS:
        # Opened while the agent was away: one summary of exactly ``count`` opens.
        await asyncio.gather(*(open_pixel(pixels[used + i], used + i) for i in range(count)))
        used += count
        agent = await agent_of(tmp_path, enrollment, relay_port, sink, POLISH).start()
        try:
            note = await summary_after(agent)
        finally:
            await agent.stop()
        titles[count], bodies[count] = note["title"], note["body"]
        assert len(note["events"]) == count

    assert bodies[1] == ("1 otwarcie podczas Twojej nieobecności. Kliknij, aby zobaczyć wiadomość.")
    assert titles[1] == "odbiorca0@klient.example otwiera „Oferta na II kwartał nr 0”"
    assert bodies[2].startswith("2 otwarcia podczas Twojej nieobecności. ")
    assert bodies[5].startswith("5 otwarć podczas Twojej nieobecności. ")
    assert bodies[22].startswith("22 otwarcia podczas Twojej nieobecności. ")
    # Several people: the verb is plural, "and N others" takes Polish forms, and the
    # number of emails too.
    assert titles[2].endswith(" otwierają 2 wiadomości")
    assert " i 3 inne osoby otwierają 5 wiadomości" in titles[5]
    assert " i 20 innych osób otwierają 22 wiadomości" in titles[22]
    log = "".join(agent.stderr_lines)
    assert "mailbeacon agent: relay on" in log  # the log stays English


async def test_app_language_switches_the_next_notification_without_a_restart(
    tmp_path: Path, polish_server: TrackingServer, sink: SmtpSink
) -> None:
    enrollment = (await polish_server.add_user("anna")).encode()
    relay_port = free_port()
    english = {"LANG": "C.UTF-8", "LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": ""}
    profile = tmp_path / "agent"
    keyring = tmp_path / "keyring.json"
    code, _out, err = await run_cli(
        profile, keyring, "config", "set", "tracking.settle_seconds", "0"
    )
    assert code == 0, err
    agent = await agent_of(tmp_path, enrollment, relay_port, sink, english).start()
    try:

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", relay_port, timeout=30) as client:
                client.login("mailbeacon", RELAY_PASSWORD)
                client.send_message(offer(0))
                client.send_message(offer(1))

        await asyncio.to_thread(send)
        got = {d.rcpt_tos[0]: pixel_of(d.data) for d in await sink.until(2, within=30)}
        first, second = got["odbiorca0@klient.example"], got["odbiorca1@klient.example"]
        await open_pixel(first, 0)
        note = await agent.notification(within=15)
        assert note["title"] == "odbiorca0@klient.example opened “Oferta na II kwartał nr 0”"
        code, _out, err = await run_cli(profile, keyring, "config", "set", "app.language", "pl")
        assert code == 0, err
        await open_pixel(second, 1)
        note = await agent.notification(within=15)
        assert note["title"] == "odbiorca1@klient.example – otwarcie „Oferta na II kwartał nr 1”"
        assert re.match(r"\d+ (s|min) po wysłaniu", note["body"]), note["body"]
    finally:
        await agent.stop()
