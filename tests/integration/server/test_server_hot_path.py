"""The hot path (server/fastpath.py): tracking requests answered without ASGI, over
real sockets, with every promise of the ASGI path kept.

The first tests drive the protocol alone on a real socket, with an ASGI app that
records every request it is given and an answerer that records every hit: they
show which requests take the hot path and that HTTP (keep-alive, HEAD, HTTP/1.0,
pipelining, a body, a client that leaves, an error, a graceful stop) behaves as
uvicorn's own cycle would. The last ones run the real server on both back ends and
compare, byte for byte, what the hot path and the ASGI path answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.server import ServerState

from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.pixel import GIF
from mailbeacon.server.answers import NOT_FOUND, PIXEL, Answer, Pending
from mailbeacon.server.config import Database
from mailbeacon.server.fastpath import tracking_protocol
from mailbeacon.server.http_limits import bounded_protocol
from mailbeacon.server.recorder import Commit
from mailbeacon.server.tracker import LOOKUP, Lookup
from mailbeacon.server.tracking_server import TrackingServer
from tests.helpers.server import CHROME, RECIPIENT, WAIT, claim_url, new_mail, query

Message = MutableMapping[str, Any]
DEFAULTS = [(b"date", b"Mon, 07 Dec 2026 04:00:00 GMT")]
KEEP_ALIVE = 1  # seconds an idle connection is kept (uvicorn's timeout_keep_alive)


@dataclass
class Answering:
    """Answers every tracking request with the pixel, after ``gate`` opens."""

    calls: list[tuple[str, str, str]] = field(default_factory=list)
    called: asyncio.Event = field(default_factory=asyncio.Event)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    fail: bool = False

    def __post_init__(self) -> None:
        self.gate.set()

    def answer_now(
        self, method: str, path: str, peer: str, headers: list[tuple[bytes, bytes]]
    ) -> Answer | Pending | Lookup | None:
        """Pixels as the tracker decides them: pending until the hit is "committed"
        (the gate opens); /c/lookup/… as a token whose user must be looked up."""
        if path.startswith("/c/lookup/"):
            return LOOKUP
        self.calls.append((method, path, peer))
        self.called.set()
        if self.fail:
            raise RuntimeError("the store is on fire")
        commit = Commit()
        opened = asyncio.ensure_future(self.gate.wait())
        opened.add_done_callback(lambda _opened: commit.set_result(None))
        return Pending(commit, PIXEL)

    async def answer(
        self, method: str, path: str, peer: str, headers: list[tuple[bytes, bytes]]
    ) -> Answer | None:
        self.calls.append((method, path, peer))
        self.called.set()
        await self.gate.wait()
        return NOT_FOUND


@dataclass
class AsgiApp:
    """The ASGI side: records each path it serves and answers 200 "asgi"."""

    paths: list[str] = field(default_factory=list)

    async def __call__(
        self, scope: Message, receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        assert scope["type"] == "http"
        self.paths.append(scope["path"] + ("?" + scope["query_string"].decode()
                                           if scope["query_string"] else ""))
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"4")]})
        await send({"type": "http.response.body", "body": b"asgi"})


@dataclass
class Served:
    """The protocol listening on a real loopback port."""

    port: int
    answering: Answering
    asgi: AsgiApp
    state: ServerState

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A recipient's connection."""
        return await asyncio.open_connection(
            "127.0.0.1", self.port, local_addr=(RECIPIENT, 0)
        )

    async def hit_in_flight(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection whose pixel hit is decided but not yet committed."""
        self.answering.gate.clear()
        reader, writer = await self.connect()
        writer.write(b"GET /o/abc.gif HTTP/1.1\r\nHost: t\r\n\r\n")
        async with asyncio.timeout(WAIT):
            await self.answering.called.wait()
        return reader, writer


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """The hot-path protocol on a free port, as uvicorn would instantiate it."""
    answering, asgi = Answering(), AsgiApp()
    config = uvicorn.Config(asgi, lifespan="off", log_config=None, access_log=False,
                            timeout_keep_alive=KEEP_ALIVE)
    config.load()
    state = ServerState()
    state.default_headers = DEFAULTS
    protocol = tracking_protocol(bounded_protocol(16 * 1024, 32 * 1024, 100), answering)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: protocol(config=config, server_state=state, app_state={}), "127.0.0.1", 0
    )
    try:
        yield Served(server.sockets[0].getsockname()[1], answering, asgi, state)
    finally:
        for connection in list(state.connections):
            connection.transport.close()
        server.close()
        await server.wait_closed()


async def _until(done: Callable[[], bool]) -> None:
    """Wait (bounded) until ``done()`` holds."""
    for _ in range(int(WAIT / 0.01)):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def _response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One response: (head, body)."""
    async with asyncio.timeout(WAIT):
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length) if length and b"HEAD" not in head else b""
    return head, body


async def test_a_pixel_request_is_answered_by_the_tracker_without_asgi(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(b"GET /o/abc.gif HTTP/1.1\r\nHost: t\r\nUser-Agent: Mail\r\n\r\n")
    head, body = await _response(reader)
    assert served.answering.calls == [("GET", "/o/abc.gif", RECIPIENT)]
    assert served.asgi.paths == []
    # Exactly the answer's bytes, with uvicorn's Date first.
    assert head + body == PIXEL.encode(DEFAULTS)
    assert body == GIF
    # The connection stays open for the next one (keep-alive).
    writer.write(b"GET /c/xyz HTTP/1.1\r\nHost: t\r\n\r\n")
    await _response(reader)
    assert served.answering.calls[-1] == ("GET", "/c/xyz", RECIPIENT)
    writer.close()


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET /o/abc.gif?utm=1 HTTP/1.1",  # a query string
        b"GET /o/ab%63.gif HTTP/1.1",  # percent-escapes
        b"POST /o/abc.gif HTTP/1.1",  # not GET or HEAD
        b"GET /healthz HTTP/1.1",  # not a tracking path
    ],
)
async def test_unusual_forms_take_the_asgi_path(served: Served, request_line: bytes) -> None:
    reader, writer = await served.connect()
    writer.write(request_line + b"\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
    _, body = await _response(reader)
    writer.close()
    assert body == b"asgi"
    assert served.answering.calls == []
    assert len(served.asgi.paths) == 1


async def test_head_gets_the_head_without_the_body(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(b"HEAD /o/abc.gif HTTP/1.1\r\nHost: t\r\n\r\n")
    async with asyncio.timeout(WAIT):
        head = await reader.readuntil(b"\r\n\r\n")
    writer.write(b"GET /o/abc.gif HTTP/1.1\r\nHost: t\r\n\r\n")
    _, body = await _response(reader)  # the next answer starts right after the head
    writer.close()
    assert head == PIXEL.encode(DEFAULTS, head=True)
    assert b"content-length: 43" in head
    assert body == GIF
    assert [call[0] for call in served.answering.calls] == ["HEAD", "GET"]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /o/abc.gif HTTP/1.0\r\n\r\n",
        b"GET /o/abc.gif HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ],
)
async def test_a_connection_that_asks_to_close_is_closed_after_its_answer(
    served: Served, request_bytes: bytes
) -> None:
    reader, writer = await served.connect()
    writer.write(request_bytes)
    async with asyncio.timeout(WAIT):
        everything = await reader.read()  # until the server closes
    writer.close()
    assert everything == PIXEL.encode(DEFAULTS, close=True)
    assert b"connection: close\r\n" in everything


async def test_pipelined_requests_are_answered_in_order(served: Served) -> None:
    served.answering.gate.clear()  # the first hit is still being committed…
    reader, writer = await served.connect()
    writer.write(
        b"GET /o/first.gif HTTP/1.1\r\nHost: t\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
        b"GET /o/third.gif HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    async with asyncio.timeout(WAIT):
        await served.answering.called.wait()
    served.answering.gate.set()  # …and now it is
    answers = [await _response(reader) for _ in range(3)]
    writer.close()
    # A tracking request queued behind another takes the ASGI path, in its turn.
    assert [body for _, body in answers] == [GIF, b"asgi", b"asgi"]
    assert [path for _, path, _ in served.answering.calls] == ["/o/first.gif"]
    assert served.asgi.paths == ["/healthz", "/o/third.gif"]


async def test_a_body_on_a_tracking_request_is_read_and_dropped(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(
        b"GET /o/abc.gif HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /o/def.gif HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    first, second = await _response(reader), await _response(reader)
    writer.close()
    assert (first[1], second[1]) == (GIF, b"asgi")  # the second was pipelined behind it
    assert [path for _, path, _ in served.answering.calls] == ["/o/abc.gif"]
    assert served.asgi.paths == ["/o/def.gif"]  # parsed whole: the body did not spill into it


async def test_a_client_that_leaves_still_has_its_hit_recorded(served: Served) -> None:
    _, writer = await served.hit_in_flight()
    writer.close()
    await writer.wait_closed()
    await _until(lambda: not served.state.connections)  # the server saw it leave
    served.answering.gate.set()
    await asyncio.sleep(0)  # the commit's callback runs: it writes nothing, raises nothing
    await _until(lambda: not served.state.tasks)
    assert served.answering.calls == [("GET", "/o/abc.gif", RECIPIENT)]


async def test_a_token_whose_user_must_be_looked_up_is_answered_by_the_waiting_path(
    served: Served,
) -> None:
    reader, writer = await served.connect()
    writer.write(b"GET /c/lookup/xyz HTTP/1.1\r\nHost: t\r\n\r\n")
    async with asyncio.timeout(WAIT):
        await served.answering.called.wait()
    head, body = await _response(reader)
    writer.close()
    assert head + body == NOT_FOUND.encode(DEFAULTS)
    assert served.answering.calls == [("GET", "/c/lookup/xyz", RECIPIENT)]
    assert served.asgi.paths == []


@pytest.mark.expect_log("a tracking request failed")
async def test_an_unexpected_error_is_a_500_and_a_log_line_never_a_hung_connection(
    served: Served,
) -> None:
    served.answering.fail = True
    reader, writer = await served.connect()
    writer.write(b"GET /o/abc.gif HTTP/1.1\r\nHost: t\r\n\r\n")
    head, body = await _response(reader)
    writer.close()
    assert head.startswith(b"HTTP/1.1 500 ")
    assert body == b"Internal server error\n"


async def test_a_stop_waits_for_the_hit_in_flight_and_then_closes(served: Served) -> None:
    reader, writer = await served.hit_in_flight()
    for connection in list(served.state.connections):
        connection.shutdown()  # what uvicorn does to every connection when it stops
    # Kept open while the hit is committed (uvicorn's stop waits for open connections).
    assert served.state.connections
    with contextlib.suppress(TimeoutError):
        early = await asyncio.wait_for(reader.read(1), timeout=0.2)
        raise AssertionError(f"answered or closed before the hit was committed: {early!r}")
    served.answering.gate.set()
    async with asyncio.timeout(WAIT):
        everything = await reader.read()
    writer.close()
    assert everything == PIXEL.encode(DEFAULTS, close=True)


async def test_an_idle_connection_is_closed_after_the_keep_alive_time(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(b"GET /o/abc.gif HTTP/1.1\r\nHost: t\r\n\r\n")
    await _response(reader)
    started = asyncio.get_running_loop().time()
    async with asyncio.timeout(KEEP_ALIVE + WAIT):
        assert await reader.read() == b""  # closed by the server, nothing more sent
    writer.close()
    assert asyncio.get_running_loop().time() - started >= KEEP_ALIVE * 0.9


async def test_a_connection_in_use_is_kept_past_the_keep_alive_time(served: Served) -> None:
    reader, writer = await served.connect()
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(4):  # a request every 0.6 s: never idle for a whole second
        writer.write(b"GET /o/abc.gif HTTP/1.1\r\nHost: t\r\n\r\n")
        _, body = await _response(reader)
        assert body == GIF
        with contextlib.suppress(TimeoutError):
            closed = await asyncio.wait_for(reader.read(1), timeout=0.6)
            raise AssertionError(f"closed while in use: {closed!r}")
    assert loop.time() - started > 2 * KEEP_ALIVE
    writer.close()


# -- the real server: both paths answer alike -------------------------------------


def _comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [(k, v) for k, v in response.headers.multi_items() if k not in ("date",)]
    return response.status_code, sorted(headers), response.content


async def test_the_hot_path_and_the_asgi_path_answer_alike(
    server: TrackingServer, alice: Enrollment
) -> None:
    mail = new_mail(alice)
    base = f"http://127.0.0.1:{server.port}"
    click = mail.click("https://example.com/pricing?plan=team")
    requests: list[tuple[str, str]] = [
        ("GET", mail.pixel()),
        ("HEAD", mail.pixel()),
        ("GET", f"{base}/o/forged.gif"),
        ("GET", f"{base}/o/not-an-image"),
        ("GET", click),
        ("GET", f"{base}/c/forged"),
        ("DELETE", click),
        ("GET", f"{base}/claim/forged"),
    ]
    asgi = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=server.app, client=(RECIPIENT, 4321)),
        base_url=base,
    )
    hot = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=RECIPIENT))
    async with asgi, hot:
        for method, url in requests:
            over_socket = await hot.request(method, url)
            in_process = await asgi.request(method, url)
            assert _comparable(over_socket) == _comparable(in_process), (method, url)
        # A claim link works once: one for each path.
        claimed = [await hot.get(claim_url(alice)), await asgi.get(claim_url(alice))]
    assert [r.status_code for r in claimed] == [200, 200]
    assert claimed[0].text == claimed[1].text
    assert all("mb_self_" in r.headers["set-cookie"] for r in claimed)


async def test_a_tracked_pixel_over_the_socket_is_stored_before_it_is_answered(
    server: TrackingServer, alice: Enrollment, database: Database
) -> None:
    """The promise: answered implies committed (the hot path awaits the recorder)."""
    mail = new_mail(alice)
    async with httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(local_address=RECIPIENT),
        headers={"User-Agent": CHROME},
    ) as client:
        response = await client.get(mail.pixel())
    assert response.status_code == 200
    rows = query(database, "SELECT message, verdict FROM events WHERE user_id = ?",
                 (alice.user_id,))
    assert rows == [(mail.message, "human")]
