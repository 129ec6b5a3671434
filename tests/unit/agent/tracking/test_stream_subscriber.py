"""The subscriber survives a handler that fails (disk full) and resumes."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import ServerConnection, serve

from mailbeacon.agent.tracking.stream import StreamState, StreamSubscriber
from mailbeacon.core.backoff import Backoff
from mailbeacon.core.events import ServerEvent


def event(n: int) -> str:
    return json.dumps(ServerEvent(n, "open", "m", None, "2030-01-01T00:00:00Z", "127.0.0.9",
                                  "UA", "human", "").to_json())


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[str]]]:
    """A stream that sends every event after ``after=`` (ids 1..3)."""
    paths: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        paths.append(ws.request.path)
        after = int(ws.request.path.rsplit("=", 1)[1])
        for n in range(after + 1, 4):
            await ws.send(event(n))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        yield f"http://127.0.0.1:{port}", paths


@pytest.mark.expect_log("stream handler failed")
async def test_a_handler_failure_reconnects_and_resumes_from_the_last_stored_id(
    server: tuple[str, list[str]],
) -> None:
    url, paths = server
    stored: list[int] = []
    states: list[StreamState] = []
    failed = False
    done = asyncio.Event()

    async def handle(message: object) -> None:
        nonlocal failed
        assert isinstance(message, ServerEvent)
        if message.id == 2 and not failed:
            failed = True
            raise sqlite3.OperationalError("database or disk is full")
        stored.append(message.id)
        if message.id == 3:
            done.set()

    async def no_wait(_seconds: float) -> None:
        return None

    subscriber = StreamSubscriber(url, "t", lambda: stored[-1] if stored else 0, handle,
                                  on_state=lambda s, _d: states.append(s),
                                  backoff=Backoff(first=0), sleep=no_wait)
    task = asyncio.create_task(subscriber.run())
    try:
        async with asyncio.timeout(10):
            await done.wait()
    finally:
        task.cancel()
    assert stored == [1, 2, 3]
    assert paths[:2] == ["/v1/stream?after=0", "/v1/stream?after=1"]
    assert StreamState.OFFLINE in states
