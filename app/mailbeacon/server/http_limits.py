"""uvicorn's httptools protocol with limits on request heads, and coalesced writes.

httptools buffers a request line or header of any length before uvicorn sees it, so
without a limit one connection could make the server hold gigabytes. This subclass
counts the bytes of each request head as they arrive and answers 414 (URL) or 431
(headers) before anything larger is buffered.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mailbeacon.server.coalesce import CoalescingTransport

LINGER_SECONDS = 2.0
_REASONS = {414: b"URI Too Long", 431: b"Request Header Fields Too Large"}


class _TooLarge(Exception):
    """Raised inside a parser callback; uvicorn turns it into send_400_response."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that rejects oversized request heads with 414/431."""

    max_url: ClassVar[int] = 16 * 1024
    max_head: ClassVar[int] = 48 * 1024
    max_headers: ClassVar[int] = 100

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._mb_head_bytes = 0
        self._mb_in_body = False
        self._mb_status = 0
        self._mb_header_count = 0
        # One send per response instead of two (head and body): see coalesce.py.
        super().connection_made(CoalescingTransport(transport, asyncio.get_running_loop()))

    def data_received(self, data: bytes) -> None:
        if self._mb_status:
            return  # rejected; the connection is closing
        if not self._mb_in_body:
            self._mb_head_bytes += len(data)
            if self._mb_head_bytes > self.max_head:
                self._reject(414 if self._url_too_long(data) else 431)
                return
        super().data_received(data)

    def _url_too_long(self, data: bytes) -> bool:
        """Whether it is the request line (not the headers) that is oversized."""
        if self._mb_header_count:
            return False
        end = data.find(b"\n")
        return end == -1 or end > self.max_url

    def on_message_begin(self) -> None:
        self._mb_header_count = 0
        super().on_message_begin()

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
        self._mb_in_body = True
        self._mb_head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._mb_in_body = False
        super().on_message_complete()

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


def bounded_protocol(max_url: int, max_head: int, max_headers: int) -> type[HttpToolsProtocol]:
    """A protocol class with these limits (uvicorn takes a class, not an instance)."""
    return type(
        "MailBeaconHttpProtocol",
        (BoundedHttpToolsProtocol,),
        {"max_url": max_url, "max_head": max_head, "max_headers": max_headers},
    )
