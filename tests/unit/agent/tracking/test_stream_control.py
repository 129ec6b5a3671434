"""The subscriber asks for ``hello`` and ``caught_up`` and hands them on in order."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.server import ServerConnection, serve

from mailbeacon.agent.tracking.stream import StreamSubscriber, parse_message
from mailbeacon.core.events import CaughtUp, ServerEvent, StreamHello, StreamMessage


def _event(n: int) -> str:
    return json.dumps(ServerEvent(n, "open", "m", None, "2030-01-01T00:00:00Z", "127.0.0.9",
                                  "UA", "human", "").to_json())


def test_control_messages_parse() -> None:
    assert parse_message(json.dumps(StreamHello("d1", 2, 99).to_json())) == StreamHello(
        "d1", 2, 99)
    assert parse_message(json.dumps(CaughtUp(7).to_json())) == CaughtUp(7)


async def test_hello_backlog_and_caught_up_reach_the_handler_in_order() -> None:
    asked: list[str | None] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        asked.append(ws.request.headers.get("MailBeacon-Stream"))
        await ws.send(json.dumps(StreamHello("d1", 1).to_json()))
        await ws.send(_event(1))
        await ws.send(json.dumps(CaughtUp(1).to_json()))
        await ws.send(_event(2))
        await ws.wait_closed()

    got: list[StreamMessage] = []
    done = asyncio.Event()

    async def handle(message: StreamMessage) -> None:
        got.append(message)
        if len(got) == 4:
            done.set()

    async with serve(handler, "127.0.0.1", 0) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        subscriber = StreamSubscriber(f"http://127.0.0.1:{port}", "t", lambda: 0, handle)
        task = asyncio.create_task(subscriber.run())
        try:
            async with asyncio.timeout(5):
                await done.wait()
        finally:
            task.cancel()
    assert asked == ["3"]  # hello, caught_up and the team policy
    assert [type(m) for m in got] == [StreamHello, ServerEvent, CaughtUp, ServerEvent]
