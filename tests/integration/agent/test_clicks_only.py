"""Clicks only from any mail client: ``X-MailBeacon-Track: clicks`` or a BCC to
``clicks@mailbeacon.invalid`` sends tracked links and no pixel (issue 21), through the
real relay of the real ``mailbeacon agent``."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.agent_process import AgentProcess
from tests.helpers.net import free_port
from tests.helpers.smtp import SmtpSink

RELAY_PASSWORD = "relay-secret-for-tests"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def offer(control: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "rep@example.net"
    message["To"] = "Alicja Nowak <alicja@client.example>"
    if control == "header":
        message["X-MailBeacon-Track"] = "clicks"
    message["Subject"] = "Oferta"
    message.set_content("Our offer: https://example.com/offer\n")
    message.add_alternative(
        '<p>Our <a href="https://example.com/offer">offer</a>.</p>', subtype="html"
    )
    return message


@pytest.mark.parametrize("control", ["header", "bcc"])
async def test_clicks_only_from_a_mail_client(
    tmp_path: Path, server: TrackingServer, sink: SmtpSink, control: str
) -> None:
    enrollment = await server.add_user("rep")
    relay_port = free_port()
    agent = await AgentProcess(
        tmp_path / "agent", tmp_path / "keyring.json",
        "--enroll", enrollment.encode(), "--smtp-listen", f"127.0.0.1:{relay_port}",
        "--upstream", f"smtp://127.0.0.1:{sink.port}", "--relay-password", RELAY_PASSWORD,
    ).start()  # fmt: skip
    try:
        rcpts = ["alicja@client.example"]
        if control == "bcc":
            rcpts.append("clicks@mailbeacon.invalid")

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", relay_port, timeout=30) as client:
                client.login("mailbeacon", RELAY_PASSWORD)
                client.send_message(offer(control), to_addrs=rcpts)

        await asyncio.to_thread(send)
        [got] = await sink.until(1, within=20)
    finally:
        await agent.stop()
    assert got.rcpt_tos == ("alicja@client.example",)
    assert b"/o/" not in got.data  # no pixel
    assert got.data.count(b"/c/") >= 2  # the link, in the HTML and the plain text
    assert b"X-MailBeacon" not in got.data and b"mailbeacon.invalid" not in got.data
