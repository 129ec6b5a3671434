"""The event stream subscriber: resumes from the last handled id, reconnects with backoff.

It asks for the stream's control messages (``MailBeacon-Stream: 2``): a ``hello``
naming the server's database and its generation first, and ``caught_up`` where the
backlog ends; both reach the handler, which summarises the catch-up (policy.py).
With ``MailBeacon-Stream: 3`` the server also sends the team's ``policy`` after
``hello`` and on every change; it goes to ``on_policy`` (applied before the next
message is read), never to the handler. The connection counts as established once
the first message arrived: with a current server that is after the policy was applied.

``Backoff`` is re-exported from :mod:`mailbeacon.core.backoff` for callers that tune it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

from mailbeacon import __version__
from mailbeacon.core.backoff import Backoff
from mailbeacon.core.events import CaughtUp, Revision, ServerEvent, StreamHello, StreamMessage
from mailbeacon.core.language import Phrase, mark
from mailbeacon.core.policy import PolicyError, TeamPolicy

log = logging.getLogger(__name__)
# The stream's details, English in the status file and the log, the rep's language in
# the tray (agent/status.py words them).
TOKEN_REFUSED = mark("the server refused the API token (HTTP {code}): enroll again")
UNREACHABLE = mark("cannot reach {url}: {error}")
NOT_STORED = mark("events cannot be stored: {error}")

Message = StreamMessage
# Asks the server for ``hello``, ``caught_up`` and ``policy`` (server/stream.py).
STREAM_VERSION = ("MailBeacon-Stream", "3")
AGENT_HEADER = "MailBeacon-Agent"  # this agent's version, for the team's console
Handler = Callable[[Message], Awaitable[None]]


class StreamState(StrEnum):
    """What the rep's tray shows about the connection to the tracking server."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    OFFLINE = "offline"
    REFUSED = "refused"


# Reconnect waits: 0.1-0.2 s after a healthy session ended (tests/e2e/test_faults.py
# expects the agent back within seconds), doubling while the server stays away, at
# most 30 s. Each wait is 0.5-1.0 of 0.2 s * 2**n (a centre of 0.15 s * 2**n, ±1/3);
# once that reaches the cap the waits spread over 20-30 s.
STREAM_BACKOFF = Backoff(first=0.15, factor=2.0, cap=30.0, jitter=1 / 3)


def stream_url(server_url: str, after: int) -> str:
    """The WebSocket URL of the stream, from the server's HTTP base URL."""
    parts = urlsplit(server_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    path = parts.path.rstrip("/") + "/v1/stream"
    return urlunsplit((scheme, parts.netloc, path, f"after={after}", ""))


def parse_policy(raw: str | bytes) -> TeamPolicy | None:
    """The team's policy when ``raw`` is a ``policy`` message, else None."""
    head = raw[:40] if isinstance(raw, str) else raw[:40].decode("latin-1")
    if '"policy"' not in head:
        return None
    try:
        data = json.loads(raw)
        if data.get("type") != "policy":
            return None
        return TeamPolicy.from_json(data)
    except (ValueError, AttributeError, PolicyError):
        log.warning("ignoring a policy message this agent cannot read: %.200r", raw)
        return None


def parse_message(raw: str | bytes) -> Message | None:
    """A stream message, or None for one this agent does not understand."""
    try:
        data: dict[str, Any] = json.loads(raw)
        kind = data.get("type")
        if kind == "hello":
            return StreamHello(
                str(data["db"]), int(data["generation"]), int(data.get("floor", 0))
            )
        if kind == "caught_up":
            return CaughtUp(int(data["last"]))
        if kind == "revise":
            counts = data.get("counts")
            return Revision(
                int(data["id"]),
                str(data["verdict"]),
                str(data.get("reason", "")),
                None if counts is None else bool(counts),
            )
        return ServerEvent.from_json(data)
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring a stream message this agent cannot read: %.200r", raw)
        return None


class StreamSubscriber:
    """Follows one user's stream; every event reaches ``handler`` once, in id order.

    ``last_id`` is read at every (re)connect, so the caller's durable store decides
    where to resume; the handler must have made an event durable before returning.
    """

    def __init__(
        self,
        server_url: str,
        api_token: str,
        last_id: Callable[[], int],
        handler: Handler,
        on_state: Callable[[StreamState, str], None] = lambda _s, _d: None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        on_policy: Callable[[TeamPolicy], None] = lambda _p: None,
    ) -> None:
        self._on_policy = on_policy
        self._server_url = server_url
        self._token = api_token
        self._last_id = last_id
        self._handler = handler
        self._on_state = on_state
        self._backoff = backoff or STREAM_BACKOFF
        self._rand = rand
        self._sleep = sleep
        self._received = 0

    async def run(self) -> None:
        """Subscribe until cancelled."""
        attempt = 0
        while True:
            self._on_state(StreamState.CONNECTING, self._server_url)
            self._received = 0
            try:
                await self._session()
            except InvalidStatus as exc:
                code = exc.response.status_code
                self._on_state(StreamState.REFUSED, Phrase(TOKEN_REFUSED, code=code))
                log.error("stream refused by %s: HTTP %s", self._server_url, code)
            except (OSError, WebSocketException, TimeoutError) as exc:
                self._on_state(
                    StreamState.OFFLINE, Phrase(UNREACHABLE, url=self._server_url, error=exc)
                )
                log.info("stream to %s lost: %s", self._server_url, exc)
            except Exception as exc:
                # The handler could not store an event (disk full, database locked):
                # reconnect and resume from the last stored id rather than stop for good.
                self._on_state(StreamState.OFFLINE, Phrase(NOT_STORED, error=exc))
                log.exception("stream handler failed; resuming from the last stored event")
            # A session that carried events was healthy, however it ended (a reset
            # connection raises): the next reconnect is quick again.
            attempt = 0 if self._received else attempt + 1
            await self._sleep(self._backoff.delay(attempt, self._rand))

    async def _session(self) -> None:
        url = stream_url(self._server_url, self._last_id())
        headers = {
            "Authorization": f"Bearer {self._token}", STREAM_VERSION[0]: STREAM_VERSION[1],
            AGENT_HEADER: __version__,
        }
        async with connect(url, additional_headers=headers, open_timeout=10,
                           max_size=2**20, proxy=None) as ws:
            connected = False
            async for raw in ws:
                if not connected:
                    connected = True
                    self._on_state(StreamState.CONNECTED, self._server_url)
                policy = parse_policy(raw)
                if policy is not None:
                    self._on_policy(policy)  # before anything else this connection brings
                    continue
                message = parse_message(raw)
                if message is None:
                    continue
                if isinstance(message, StreamHello):
                    log.info("stream from database %s, generation %d", message.db,
                             message.generation)
                await self._handler(message)
                if isinstance(message, ServerEvent | Revision):
                    self._received += 1
