"""``GET /v1/stream?after=ID``: a user's events over WebSocket, backlog then live.

Order of work for one subscriber, so that nothing is missed or sent twice:
subscribe to the live fan-out first, then send the backlog (id > after) page by page,
then forward live messages whose id is beyond the last backlog one. Every event
committed before the subscription is in the backlog; every one committed after is in
the queue; the overlap is skipped by id.

An agent that sends ``MailBeacon-Stream: 2`` also gets a ``hello`` first (the
database's identity and generation, docs/promises.md "No event lost or doubled")
and a ``caught_up`` after the backlog, so it can tell catch-up from live events
(one summary for what happened while it was away). Older agents get neither.

An agent that sends ``MailBeacon-Stream: 3`` also gets the team's ``policy`` right
after ``hello`` (before any event: an agent that was away applies a change made
meanwhile before it does anything else) and again whenever it changes
(``Fanout.broadcast``); ``MailBeacon-Agent`` names its version for the console.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from mailbeacon.core.events import CaughtUp, StreamHello
from mailbeacon.core.policy import TeamPolicy
from mailbeacon.server.addresses import AgentAddresses
from mailbeacon.server.fanout import Fanout, Subscription, encode, item_text
from mailbeacon.server.reader import Reader
from mailbeacon.server.recorder import Recorder, RecorderStopped
from mailbeacon.server.team import load_policy, touch_agent
from mailbeacon.server.tracker import Tracker
from mailbeacon.server.users import hash_token

log = logging.getLogger(__name__)

CLOSE_POLICY = 1008  # used before accept: uvicorn answers 403
CLOSE_TRY_AGAIN = 1013  # "try again later": the subscriber fell behind; resume with after=
_MAX_TOKEN_CHARS = 512
_MAX_ID = 2**63 - 1  # SQLite's largest integer
# The request header by which an agent asks for ``hello`` and ``caught_up``.
VERSION_HEADER = "mailbeacon-stream"
POLICY_VERSION = 3  # the stream version from which an agent takes ``policy`` messages
AGENT_HEADER = "mailbeacon-agent"  # the agent's version, shown on the console


class StreamEndpoint:
    """The ASGI WebSocket endpoint of the event stream."""

    def __init__(
        self,
        reader: Reader,
        fanout: Fanout,
        addresses: AgentAddresses,
        recorder: Recorder,
        tracker: Tracker,
        queue_limit: int,
        page_size: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reader = reader
        self._fanout = fanout
        self._addresses = addresses
        self._recorder = recorder
        self._tracker = tracker
        self._queue_limit = queue_limit
        self._page_size = page_size
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        user_id = await self._authenticate(websocket)
        after = _after(websocket)
        if user_id is None or after is None:
            await websocket.close(code=CLOSE_POLICY)
            return
        client = websocket.client
        ip = self._tracker.client_ip(client.host if client else "", websocket.scope["headers"])
        # Subscribe before reading the backlog (see the module docstring), and count the
        # address as the rep's own before the client can send a single hit.
        policy = _version(websocket) >= POLICY_VERSION
        subscription = self._fanout.subscribe(user_id, self._queue_limit, control=policy)
        self._addresses.connected(user_id, ip, self._clock())
        try:
            await self._remember_address(user_id, ip)
            await self._remember_agent(user_id, websocket.headers.get(AGENT_HEADER, ""))
            await websocket.accept()
            hello = await self._hello() if _wants_control(websocket) else None
            # Read now, not from the server's poll: a change made a moment ago reaches
            # an agent that connects now before any event does.
            team = policy_text(await self._reader.run(load_policy)) if policy else None
            await self._run(websocket, subscription, after, hello, team)
        finally:
            self._fanout.unsubscribe(subscription)
            self._addresses.disconnected(user_id, ip, self._clock())
            await self._remember_address(user_id, ip)

    async def _authenticate(self, websocket: WebSocket) -> int | None:
        header = websocket.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > _MAX_TOKEN_CHARS:
            return None
        user = await self._reader.user_by_token_hash(hash_token(token))
        return None if user is None else user.id

    async def _remember_address(self, user_id: int, ip: str) -> None:
        now = self._clock()
        try:
            await self._recorder.run(lambda store: store.touch_agent_address(user_id, ip, now))
        except RecorderStopped:
            pass
        except Exception:
            log.warning("could not store the agent address of user %d", user_id, exc_info=True)

    async def _remember_agent(self, user_id: int, version: str) -> None:
        now = self._clock()
        try:
            await self._recorder.run(lambda store: touch_agent(store, user_id, version, now))
        except RecorderStopped:
            pass
        except Exception:
            log.warning("could not store the agent version of user %d", user_id, exc_info=True)

    async def _hello(self) -> StreamHello:
        db, generation, floor = await self._reader.identity()
        return StreamHello(db, generation, floor)

    async def _run(
        self, websocket: WebSocket, subscription: Subscription, after: int,
        hello: StreamHello | None, team: str | None = None,
    ) -> None:
        sender = asyncio.create_task(self._send(websocket, subscription, after, hello, team))
        listener = asyncio.create_task(_until_disconnect(websocket))
        try:
            await asyncio.wait({sender, listener}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, listener):
                task.cancel()
            for task in (sender, listener):
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, OSError):
                    await task

    async def _send(
        self, websocket: WebSocket, subscription: Subscription, after: int,
        hello: StreamHello | None, team: str | None = None,
    ) -> None:
        try:
            if hello is not None:
                await websocket.send_text(encode(hello.to_json()))
            if team is not None:
                await websocket.send_text(team)
            last = await self._backlog(websocket, subscription, after)
            if hello is not None:
                # Everything up to here was committed before this connection: catch-up.
                await websocket.send_text(encode(CaughtUp(last).to_json()))
            while not subscription.overflowed.is_set():
                message = await subscription.queue.get()
                if message.seq > last:
                    await websocket.send_text(message.text)
            await websocket.close(
                code=CLOSE_TRY_AGAIN, reason="subscriber fell behind; reconnect with after="
            )
        except (WebSocketDisconnect, OSError, RuntimeError):
            return  # the client went away; nothing to clean up here

    async def _backlog(self, websocket: WebSocket, subscription: Subscription, after: int) -> int:
        last = after
        while not subscription.overflowed.is_set():
            page = await self._reader.stream_page(subscription.user_id, last, self._page_size)
            for item in page:
                await websocket.send_text(item_text(item))
            events = [item.seq for item in page if item.event is not None]
            if events:
                last = events[-1]
            if len(events) < self._page_size:
                break
        return last


def _version(websocket: WebSocket) -> int:
    version = websocket.headers.get(VERSION_HEADER, "").strip()
    return int(version) if version.isdigit() and len(version) < 4 else 0


def _wants_control(websocket: WebSocket) -> bool:
    return _version(websocket) >= 2


def policy_text(policy: TeamPolicy) -> str:
    """The ``policy`` stream message."""
    return encode({"type": "policy", **policy.to_json()})


def _after(websocket: WebSocket) -> int | None:
    query = parse_qs(websocket.scope.get("query_string", b"").decode("latin-1"))
    values = query.get("after", ["0"])
    try:
        after = int(values[-1])
    except ValueError:
        return None
    return min(max(after, 0), _MAX_ID)


async def _until_disconnect(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
