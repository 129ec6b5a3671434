"""uvicorn's httptools protocol with limits on request heads, and coalesced writes.

httptools buffers a request line or header of any length before uvicorn sees it, so
without a limit one connection could make the server hold gigabytes. This subclass
counts the bytes of each request head as they arrive and answers 414 (URL) or 431
(headers) before anything larger is buffered.

Time is bounded too: uvicorn's keep-alive timeout runs only between requests, so a
client that connects and sends nothing, or half a request head, a byte now and then
("slowloris"), would hold its connection forever. Each request head must arrive
whole within ``head_timeout`` of its first byte (the first one: of the connection);
otherwise the answer is 408 and the connection is closed. The timer is armed only
while a head is incomplete after a read, so the usual request (its head in one read)
costs no timer at all.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mailbeacon.server.coalesce import CoalescingTransport

LINGER_SECONDS = 2.0
_REASONS = {
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
}


class _TooLarge(Exception):
    """Raised inside a parser callback; uvicorn turns it into send_400_response."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that rejects oversized request heads with 414/431."""

    max_url: ClassVar[int] = 16 * 1024
    max_head: ClassVar[int] = 48 * 1024
    max_headers: ClassVar[int] = 100
    head_timeout: ClassVar[float] = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._mb_head_bytes = 0
        self._mb_in_body = False
        self._mb_in_head = False
        self._mb_status = 0
        self._mb_header_count = 0
        self._mb_head_timer: asyncio.TimerHandle | None = None
        # One send per response instead of two (head and body): see coalesce.py.
        super().connection_made(CoalescingTransport(transport, asyncio.get_running_loop()))
        self._mb_arm()  # a connection that never sends a byte is bounded too

    def connection_lost(self, exc: Exception | None) -> None:
        self._mb_disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._mb_status:
            return  # rejected; the connection is closing
        if not self._mb_in_body:
            self._mb_head_bytes += len(data)
            if self._mb_head_bytes > self.max_head:
                self._reject(414 if self._url_too_long(data) else 431)
                return
        super().data_received(data)
        if self._mb_in_head and self._mb_head_timer is None and not self._mb_status:
            self._mb_arm()  # a head still incomplete after this read: bound its time

    def _mb_arm(self) -> None:
        self._mb_head_timer = asyncio.get_running_loop().call_later(
            self.head_timeout, self._mb_head_timed_out
        )

    def _mb_disarm(self) -> None:
        if self._mb_head_timer is not None:
            self._mb_head_timer.cancel()
            self._mb_head_timer = None

    def _mb_head_timed_out(self) -> None:
        self._mb_head_timer = None
        if not self._mb_status and not self.transport.is_closing():
            self._reject(408)

    def _url_too_long(self, data: bytes) -> bool:
        """Whether it is the request line (not the headers) that is oversized."""
        if self._mb_header_count:
            return False
        end = data.find(b"\n")
        return end == -1 or end > self.max_url

    def on_message_begin(self) -> None:
        self._mb_message_begin()
        super().on_message_begin()

    def _mb_message_begin(self) -> None:
        """A request head begins: count its headers and time it from here."""
        self._mb_header_count = 0
        self._mb_in_head = True

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > self.max_url:
            self._mb_status = 414
            raise _TooLarge
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._mb_header_count += 1
        if self._mb_header_count > self.max_headers:
            self._mb_status = 431
            raise _TooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._mb_head_complete()
        super().on_headers_complete()

    def _mb_head_complete(self) -> None:
        """The head is whole: stop its timer, count the next head from zero."""
        self._mb_in_head = False
        self._mb_disarm()
        self._mb_in_body = True
        self._mb_head_bytes = 0

    def on_message_complete(self) -> None:
        self._mb_message_complete()
        super().on_message_complete()

    def _mb_message_complete(self) -> None:
        """The request is whole: the next bytes are the next request's head."""
        self._mb_in_body = False

    def send_400_response(self, msg: str) -> None:
        if self._mb_status:
            self._reject(self._mb_status)
        else:
            super().send_400_response(msg)

    def _reject(self, status: int) -> None:
        self._mb_status = status
        body = _REASONS[status] + b"\n"
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status, _REASONS[status], len(body), body)
        )
        # Lingering close: closing with unread input would send a TCP reset, and the
        # client could lose the answer. Finish our side, discard what still arrives
        # (data_received ignores it now), and close after a grace period.
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, self.transport.close)


def bounded_protocol(
    max_url: int, max_head: int, max_headers: int, head_timeout: float = 10.0
) -> type[BoundedHttpToolsProtocol]:
    """A protocol class with these limits (uvicorn takes a class, not an instance)."""
    return type(
        "MailBeaconHttpProtocol",
        (BoundedHttpToolsProtocol,),
        {
            "max_url": max_url,
            "max_head": max_head,
            "max_headers": max_headers,
            "head_timeout": head_timeout,
        },
    )
