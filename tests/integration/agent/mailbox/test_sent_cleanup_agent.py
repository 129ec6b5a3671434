"""The Sent-folder cleanup through the real agent process (issue 9): a mail client sends
through the relay, the upstream saves the tracked copy into the rep's Sent (as Gmail
does), and the agent replaces it with the untracked original."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailbeacon.core.enrollment import Enrollment
from tests.helpers import dovecot
from tests.helpers.agent_process import agent_with_imap, offer_q4, send_through_relay
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
        agent = await agent_with_imap(
            tmp_path, enrollment.encode(), relay_port, sink.port, imap.port,
            dovecot.USER, dovecot.PASSWORD,
        ).start()
        try:
            await asyncio.to_thread(send_through_relay, relay_port, offer_q4())
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
