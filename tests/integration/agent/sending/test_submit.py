"""The compose window's way in: SMTP to the agent's own relay, controls as headers."""

from __future__ import annotations

import asyncio

import pytest

from mailbeacon.agent.sending.relay import IncomingMessage, Relay
from mailbeacon.agent.sending.submit import RelaySubmitter, SubmitError

PASSWORD = "relay-pw"
RAW = b"From: rep@rep.example\r\nTo: a@client.example\r\nSubject: Hi\r\n\r\n<p>Hi</p>\r\n"


async def test_a_composed_message_reaches_the_relay_with_its_track_and_log_choice() -> None:
    received: list[IncomingMessage] = []

    async def accept(message: IncomingMessage) -> str:
        received.append(message)
        return "q1"

    relay = Relay(accept, PASSWORD)
    await relay.start()
    try:
        submit = RelaySubmitter(relay.host, relay.port, "mailbeacon", lambda: PASSWORD)
        message = IncomingMessage("rep@rep.example", ("a@client.example",), RAW, False, True)
        answer = await asyncio.to_thread(submit, message)
    finally:
        await relay.stop()
    assert "q1" in answer
    [got] = received
    assert (got.track_override, got.log_override) == (False, True)
    assert got.recipients == ("a@client.example",)
    assert b"X-MailBeacon" not in got.data and got.data.endswith(b"<p>Hi</p>\r\n")


@pytest.mark.expect_log("wrong password")
async def test_a_wrong_relay_password_is_a_clear_error() -> None:
    async def accept(_message: IncomingMessage) -> str:
        raise AssertionError("must not be reached")

    relay = Relay(accept, PASSWORD)
    await relay.start()
    try:
        submit = RelaySubmitter(relay.host, relay.port, "mailbeacon", lambda: "wrong")
        message = IncomingMessage("rep@rep.example", ("a@client.example",), RAW, None, None)
        with pytest.raises(SubmitError, match="relay password"):
            await asyncio.to_thread(submit, message)
    finally:
        await relay.stop()


def test_an_unreachable_relay_is_a_clear_error() -> None:
    submit = RelaySubmitter("127.0.0.1", 1, "mailbeacon", lambda: PASSWORD, timeout=5)
    message = IncomingMessage("rep@rep.example", ("a@client.example",), RAW, None, None)
    with pytest.raises(SubmitError, match=r"relay at 127\.0\.0\.1:1"):
        submit(message)
