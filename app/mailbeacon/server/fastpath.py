"""The hot path: pixel, link and claim requests answered without ASGI.

Every open of every tracked email is a request here, and most of what uvicorn does
for a request (a RequestResponseCycle, ASGI message dicts, header validation, a
response built header by header) cost more than deciding and storing the hit
(docs/performance.md has the profile). This protocol is uvicorn's httptools
protocol with our limits (http_limits.py) and one shortcut: a GET or HEAD for
/o/, /c/ or /claim/ with a plain path, arriving when no other request on the
connection is in flight, is answered by :meth:`TrackingApp.answer` directly, and
its answer's bytes are written in one call. Everything else, and every such
request in any unusual form (a query string, percent-escapes, non-ASCII, an
Upgrade, a request pipelined behind another), takes uvicorn's full ASGI path to
the same :meth:`TrackingApp.answer`, so the two paths cannot answer differently.

Most hits are decided without waiting (:meth:`TrackingApp.answer_now`) and answered
by a callback when their group commits, with no task or coroutine per request; a
token whose user must first be looked up takes a task to :meth:`TrackingApp.answer`.

What it keeps of uvicorn: parsing (httptools), the head limits and slow-head timer
(our subclass), keep-alive and its timeout, pipelining order (a request that
arrives while a fast one is in flight queues behind it exactly as uvicorn queues
its own), graceful shutdown (a connection with a hit in flight stays open until
it is answered, and uvicorn's stop waits for open connections while the recorder
still commits), and flow control (a client that does not read pauses us).
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar, Protocol

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mailbeacon.server.answers import FAILED, Answer, Pending
from mailbeacon.server.coalesce import CoalescingTransport
from mailbeacon.server.http_limits import BoundedHttpToolsProtocol
from mailbeacon.server.tracker import Lookup

log = logging.getLogger(__name__)



class Answering(Protocol):
    """What answers tracking requests (app.TrackingApp)."""

    def answer_now(
        self, method: str, path: str, peer: str, headers: list[tuple[bytes, bytes]]
    ) -> Answer | Pending | Lookup | None:
        """The answer decided without waiting (an Answer, or a Pending one), or
        something :meth:`answer` must finish (LOOKUP, None)."""

    async def answer(
        self, method: str, path: str, peer: str, headers: list[tuple[bytes, bytes]]
    ) -> Answer | None:
        """The answer to a tracking request, or None for a path that is not one."""

_FAST_PREFIXES = (b"/o/", b"/c/", b"/claim/")
_FAST_METHODS = {b"GET": "GET", b"HEAD": "HEAD"}


class _Never:
    """Stands in for uvicorn's per-request event: nothing waits on a fast request's."""

    def set(self) -> None:
        """Nothing to wake."""


_NEVER = _Never()


class FastCycle:
    """The fast request in flight: what uvicorn's connection code reads of a cycle."""

    __slots__ = ("disconnected", "keep_alive", "method", "path", "response_complete")

    message_event = _NEVER  # connection_lost sets it

    def __init__(self, method: str, path: str, keep_alive: bool) -> None:
        self.method = method
        self.path = path
        self.keep_alive = keep_alive
        self.response_complete = False
        self.disconnected = False


class TrackingHttpProtocol(BoundedHttpToolsProtocol):
    """uvicorn's bounded protocol, answering tracking requests on the hot path."""

    answering: ClassVar[Answering | None] = None
    # Keep-alive, lazily: uvicorn schedules a timer after every response and cancels
    # it at the next request (a timer heap push and removal per hit). Here a response
    # notes when the connection went idle, one timer per connection checks that
    # note when it fires and comes back for the rest of the time; the connection is
    # closed after ``timeout_keep_alive`` idle seconds all the same.
    _mb_idle_since: float | None = None
    _mb_keepalive: asyncio.TimerHandle | None = None

    def _unset_keepalive_if_required(self) -> None:
        self._mb_idle_since = None  # busy: the timer, if armed, finds out when it fires

    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            self._mb_idle_since = None
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._mb_idle_since = self.loop.time()
        if self._mb_keepalive is None:
            self._mb_keepalive = self.loop.call_later(
                self.timeout_keep_alive, self._mb_keepalive_check
            )

    def _mb_keepalive_check(self) -> None:
        self._mb_keepalive = None
        if self.transport.is_closing():
            return
        idle_since = self._mb_idle_since
        now = self.loop.time()
        if idle_since is not None and now - idle_since >= self.timeout_keep_alive:
            self.transport.close()
            return
        # Busy now (the next response arms it again) or idle for less than the timeout.
        if idle_since is not None:
            self._mb_keepalive = self.loop.call_at(
                idle_since + self.timeout_keep_alive, self._mb_keepalive_check
            )

    def connection_lost(self, exc: Exception | None) -> None:
        if self._mb_keepalive is not None:
            self._mb_keepalive.cancel()
            self._mb_keepalive = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        # uvicorn builds the request's ASGI scope here (a dict holding a copy of the
        # app's state): only a request that takes the ASGI path needs one, so it is
        # built when the head is whole and the request is known not to be fast.
        self._mb_message_begin()
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def _mb_scope(self) -> None:
        """The ASGI scope uvicorn's on_message_begin would have built, for this head."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        HttpToolsProtocol.on_message_begin(self)  # the scope, and empty url and headers
        self.url, self.expect_100_continue = url, expect
        self.headers.extend(headers)  # the list the scope holds

    def on_headers_complete(self) -> None:
        fast = self._fast_cycle()
        if fast is None:
            self._mb_scope()
            super().on_headers_complete()
            return
        self._mb_head_complete()
        self.cycle = fast  # type: ignore[assignment]  # read as a cycle by uvicorn

    def _fast_cycle(self) -> FastCycle | None:
        """A fast cycle for this request, or None when it takes the ASGI path."""
        method = _FAST_METHODS.get(self.parser.get_method())
        url = self.url
        if (
            method is None
            or self.answering is None
            or not url.startswith(_FAST_PREFIXES)
            or not url.isascii()
            # find, not "in": bytes' "in" first tries its operand as an integer, and
            # the error it raises and clears cost more than the search.
            or url.find(b"?") >= 0
            or url.find(b"%") >= 0
            or url.find(b"#") >= 0
            or self.parser.should_upgrade()
            or not (self.cycle is None or self.cycle.response_complete)
        ):
            return None
        keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        return FastCycle(method, url.decode("ascii"), keep_alive)

    def on_body(self, body: bytes) -> None:
        cycle: object = self.cycle  # uvicorn's cycle, or ours
        if isinstance(cycle, FastCycle):
            return  # a tracking request's body means nothing; it is read and dropped
        super().on_body(body)

    def on_message_complete(self) -> None:
        cycle: object = self.cycle
        if not isinstance(cycle, FastCycle):
            super().on_message_complete()
            return
        self._mb_message_complete()
        assert self.answering is not None
        peer = self.client[0] if self.client else ""
        try:
            # Most hits are decided at once and answered by a callback when their group
            # commits: no task, no coroutine (a task measured ~6 µs of CPU per request).
            now = self.answering.answer_now(cycle.method, cycle.path, peer, self.headers)
        except Exception:
            log.exception("a tracking request failed")
            now = FAILED
        if isinstance(now, Answer):
            self._send(cycle, now)
        elif isinstance(now, Pending):
            now.committed.then(lambda: self._send(cycle, now.answer))
        else:  # the token's user must be looked up first: the waiting path
            task = self.loop.create_task(self._answer(cycle, self.headers, peer))
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)

    async def _answer(
        self, cycle: FastCycle, headers: list[tuple[bytes, bytes]], peer: str
    ) -> None:
        assert self.answering is not None
        try:
            answer = await self.answering.answer(cycle.method, cycle.path, peer, headers)
            answer = answer or FAILED
        except Exception:
            # Never expected (the tracker keeps every error to itself): the client gets
            # a 500 rather than a hung connection, the operator the traceback.
            log.exception("a tracking request failed")
            answer = FAILED
        self._send(cycle, answer)

    def _send(self, cycle: FastCycle, answer: Answer) -> None:
        """Write ``answer`` and finish the request (keep-alive, or close)."""
        if cycle.disconnected:
            return  # the client left; the hit is stored all the same
        if self.flow.write_paused:
            # A client that does not read waits for its answers (rare: off the hot path).
            task = self.loop.create_task(self._send_drained(cycle, answer))
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)
            return
        raw = answer.encode(
            self.server_state.default_headers,
            head=cycle.method == "HEAD",
            close=not cycle.keep_alive,
        )
        transport = self.transport
        if isinstance(transport, CoalescingTransport):
            transport.write_now(raw)
        else:  # pragma: no cover - connection_made always wraps it
            transport.write(raw)
        cycle.response_complete = True
        if not cycle.keep_alive:
            transport.close()
        self.on_response_complete()

    async def _send_drained(self, cycle: FastCycle, answer: Answer) -> None:
        await self.flow.drain()
        self._send(cycle, answer)


def tracking_protocol(
    base: type[BoundedHttpToolsProtocol], answering: Answering
) -> type[TrackingHttpProtocol]:
    """The protocol class uvicorn instantiates per connection: ``base``'s limits (it
    comes after the hot path in the MRO), with tracking requests answered by
    ``answering``."""
    return type(
        "MailBeaconTrackingProtocol", (TrackingHttpProtocol, base), {"answering": answering}
    )
