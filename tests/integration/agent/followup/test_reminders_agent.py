"""Reminders through the real ``mailbeacon agent`` with Dovecot as the rep's inbox: one
fires (only an out-of-office came back), one is cancelled by a person's reply (issue 17)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailbeacon.agent.followup.store import FollowupStore
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers import dovecot, replies
from tests.helpers.agent_process import agent_with_imap, send_through_relay
from tests.helpers.net import free_port
from tests.helpers.smtp import SmtpSink


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def offer() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "rep@example.net"
    message["To"] = "Alicja Nowak <alicja@client.example>, Piotr Lis <piotr@client.example>"
    message["Subject"] = "Oferta Q4"
    message["Message-ID"] = "<oferta-q4@example.net>"
    message["X-MailBeacon-Remind"] = "4s"
    message.add_alternative("<p>Our offer</p>", subtype="html")
    return message


@pytest.mark.needs_program("dovecot")
async def test_a_reminder_fires_and_a_reply_cancels_the_other(
    tmp_path: Path, server: TrackingServer, sink: SmtpSink
) -> None:
    enrollment = (await server.add_user("rep")).encode()
    relay_port = free_port()
    with dovecot.running_dovecot() as imap:
        agent = await agent_with_imap(
            tmp_path, enrollment, relay_port, sink.port, imap.port,
            dovecot.USER, dovecot.PASSWORD,
        ).start()  # fmt: skip
        try:
            await agent.wait_log("first look at", within=15)
            await asyncio.to_thread(send_through_relay, relay_port, offer())
            [got] = await sink.until(1)
            assert b"X-MailBeacon" not in got.data
            await asyncio.to_thread(
                imap.append,
                replies.out_of_office("<oferta-q4@example.net>", "alicja@client.example"),
                replies.reply("<oferta-q4@example.net>", "Piotr Lis <piotr@client.example>"),
            )
            replied = await agent.notification(within=10)
            assert replied["type"] == "reply" and replied["recipient"] == "piotr@client.example"
            reminder = await agent.notification(within=15)
        finally:
            await agent.stop()
    assert reminder["type"] == "reminder"
    assert reminder["title"] == "No reply from Alicja Nowak to “Oferta Q4” in 4 seconds"
    assert reminder["recipient"] == "alicja@client.example" and reminder["email_id"]
    store = FollowupStore.in_dir(tmp_path / "agent" / "data")
    try:
        states = {r.recipient: r.state for r in store.reminders(("fired", "replied", "waiting"))}
    finally:
        store.close()
    assert states == {"alicja@client.example": "fired", "piotr@client.example": "replied"}
