"""The Sent-folder cleanup through the real agent process (issue 9): a mail client sends
through the relay, the upstream saves the tracked copy into the rep's Sent (as Gmail
does), and the agent replaces it with the untracked original."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote

import pytest

from mailbeacon.core.enrollment import Enrollment
from tests.helpers import dovecot
from tests.helpers.agent_process import AgentProcess
from tests.helpers.net import free_port
from tests.helpers.sent import SentSavingSink, has_pixel, mailbox

RELAY_PASSWORD = "relay-secret"

pytestmark = [
    pytest.mark.needs_program("dovecot"),
]


async def test_the_agent_leaves_the_untracked_original_in_sent(tmp_path: Path) -> None:
    enrollment = Enrollment("http://127.0.0.1:9", 1, "api-token", b"k" * 32)
    relay_port = free_port()
    with dovecot.running_dovecot() as imap, SentSavingSink(imap, dovecot.USER) as sink:
        user = quote(dovecot.USER, safe="")
        agent = await AgentProcess(
            tmp_path / "agent", tmp_path / "keyring.json",
            "--enroll", enrollment.encode(),
            "--smtp-listen", f"127.0.0.1:{relay_port}",
            "--upstream", f"smtp://127.0.0.1:{sink.port}",
            "--relay-password", RELAY_PASSWORD,
            "--imap", f"imap://{user}@127.0.0.1:{imap.port}",
            env={"MAILBEACON_IMAP_PASSWORD": dovecot.PASSWORD},
        ).start()
        try:
            message = EmailMessage()
            message["From"] = "rep@example.net"
            message["To"] = "Alicja Nowak <alicja@client.example>"
            message["Subject"] = "Oferta Q4"
            message["Message-ID"] = "<oferta-q4@example.net>"
            message.add_alternative("<p>Our offer</p>", subtype="html")

            def send() -> None:
                with smtplib.SMTP("127.0.0.1", relay_port, timeout=30) as client:
                    client.login("mailbeacon", RELAY_PASSWORD)
                    client.send_message(message)

            await asyncio.to_thread(send)
            [delivered] = await sink.until(1)
            assert has_pixel(delivered.data)
            # The agent waits a few seconds (a mail client may save its own copy).
            await agent.wait_log("removed 1 copy with a pixel", within=30)
            copies = await asyncio.to_thread(
                mailbox, imap, dovecot.USER, "Sent", "<oferta-q4@example.net>"
            )
        finally:
            await agent.stop()
    [copy] = copies
    assert not has_pixel(copy.data) and b"Our offer" in copy.data
    assert list((tmp_path / "agent").rglob("originals/*.eml")) == []
