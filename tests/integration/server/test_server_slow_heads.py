"""A request head must arrive whole in bounded time: slow or silent clients are cut off
(408, then the connection closes) instead of holding a connection forever.

The bound is ``ServerConfig.head_timeout`` (``server/http_limits.py``); these tests use
a short one on the real server and real sockets from a recipient's address.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.server import RECIPIENT, running_server

BOUND = 1.0  # head_timeout of these tests' server
SLACK = 3.0  # what a loaded test machine may add


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[TrackingServer]:
    """The real server with a one-second bound on request heads."""
    async with running_server(tmp_path / "server.db", head_timeout=BOUND) as running:
        yield running


async def _until_closed(reader: asyncio.StreamReader) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    start = time.monotonic()
    async with asyncio.timeout(BOUND + SLACK):
        answer = await reader.read()
    return answer, time.monotonic() - start


async def test_half_a_request_head_is_answered_408_and_closed_within_the_bound(
    quick: TrackingServer,
) -> None:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", quick.port, local_addr=(RECIPIENT, 0)
    )
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        await writer.drain()
        answer, took = await _until_closed(reader)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert took < BOUND + SLACK


async def test_a_head_dripped_a_byte_at_a_time_is_still_cut_off(quick: TrackingServer) -> None:
    # Every byte resets nothing: the bound runs from the head's first byte.
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", quick.port, local_addr=(RECIPIENT, 0)
    )
    start = time.monotonic()
    answer = b""
    try:
        with contextlib.suppress(ConnectionError):
            for byte in b"GET /healthz HTTP/1.1\r\nHost: t\r\n" * 20:
                writer.write(bytes([byte]))
                await writer.drain()
                try:
                    async with asyncio.timeout(0.1):  # also the client's pace
                        chunk = await reader.read(4096)
                except TimeoutError:
                    continue
                answer += chunk
                if not chunk:
                    break  # closed by the server
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - start < BOUND + SLACK


async def test_a_connection_that_sends_nothing_is_closed(quick: TrackingServer) -> None:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", quick.port, local_addr=(RECIPIENT, 0)
    )
    try:
        answer, _ = await _until_closed(reader)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_a_slow_head_on_a_kept_alive_connection_is_cut_off_too(
    quick: TrackingServer,
) -> None:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", quick.port, local_addr=(RECIPIENT, 0)
    )
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(SLACK):
            head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        await reader.readexactly(length)
        writer.write(b"GET /healthz HTTP/1.1\r\nHo")  # the next request, never finished
        await writer.drain()
        answer, _ = await _until_closed(reader)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_whole_requests_on_a_kept_alive_connection_are_unaffected(
    quick: TrackingServer,
) -> None:
    # Requests spread over more than the bound, each head whole: every one is answered.
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", quick.port, local_addr=(RECIPIENT, 0)
    )
    try:
        for _ in range(3):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            await writer.drain()
            async with asyncio.timeout(SLACK):
                head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ")
            length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
            await reader.readexactly(length)
            await asyncio.sleep(BOUND * 0.6)  # the client's pace: 1.8 s in all > BOUND
    finally:
        writer.close()
