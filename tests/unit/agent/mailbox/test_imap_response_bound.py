"""One IMAP response is bounded as a whole, not only each literal in it (issue 14:
three 80 MiB literals in one response grew the agent's memory by 600 MiB)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from mailbeacon.agent.mailbox.imap_client import ImapClient, ImapError

LITERAL = 400_000


async def _server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"* OK [CAPABILITY IMAP4rev1] ready\r\n")
    await writer.drain()
    line = await reader.readline()
    tag = line.split(b" ", 1)[0]
    # One FETCH response carrying three literals, each under the per-literal cap.
    for part in range(3):
        writer.write(b"* 1 FETCH (BODY[%d] {%d}\r\n" % (part, LITERAL) + b"x" * LITERAL)
        await writer.drain()
    writer.write(b")\r\n" + tag + b" OK done\r\n")
    await writer.drain()
    writer.close()


@pytest.fixture
async def port() -> AsyncIterator[int]:
    server = await asyncio.start_server(_server, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_a_response_past_the_total_bound_is_refused(port: int) -> None:
    client = await ImapClient.connect("127.0.0.1", port, "none")
    client.max_response = 2 * LITERAL + 1000  # the test's bound: two literals fit, not three
    try:
        with pytest.raises(ImapError, match="not reading it"):
            await client.command("NOOP", time_limit=10)
    finally:
        await client.close()
