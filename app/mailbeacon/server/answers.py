"""What the tracking routes answer, as records that both HTTP paths write.

The pixel, link and claim routes (/o/, /c/, /claim/) decide an :class:`Answer`;
the ASGI path (app.py, Starlette's neighbour, and tests' in-process transports)
sends it as ASGI messages, the hot path (fastpath.py) writes it as bytes straight
to the socket. One decision, two ways to carry it: what a recipient gets cannot
differ between them (docs/performance.md, "The pixel path").

The usual answers never change (the GIF, 404, 405), so their bytes are built once
per second at most: only the Date header that uvicorn refreshes every second
changes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mailbeacon.core.pixel import GIF
from mailbeacon.server.recorder import Commit

Headers = list[tuple[bytes, bytes]]

NO_CACHE = b"no-store, no-cache, must-revalidate, max-age=0, private"
COMMON: Headers = [
    (b"cache-control", NO_CACHE),
    (b"pragma", b"no-cache"),
    (b"expires", b"Thu, 01 Jan 1970 00:00:00 GMT"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]
# Kept short: the pixel is the hot path and every header costs bytes and time.
# Cache-Control covers HTTP/1.1 caches and browsers; Pragma the HTTP/1.0 ones.
GIF_HEADERS: Headers = [
    (b"content-type", b"image/gif"),
    (b"content-length", str(len(GIF)).encode("ascii")),
    (b"cache-control", NO_CACHE),
    (b"pragma", b"no-cache"),
]
HTML_HEADERS: Headers = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"content-security-policy", b"default-src 'none'"),
    *COMMON,
]
_REASONS = {
    200: b"OK",
    302: b"Found",
    404: b"Not Found",
    405: b"Method Not Allowed",
    500: b"Internal Server Error",
}


@dataclass(frozen=True, slots=True)
class Answer:
    """A response: status, headers (content-length included) and body."""

    status: int
    headers: Headers
    body: bytes = b""
    # (head only, close) -> (the default headers it was built with, the bytes).
    _built: dict[tuple[bool, bool], tuple[Headers, bytes]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def encode(self, defaults: Headers, *, head: bool = False, close: bool = False) -> bytes:
        """The HTTP/1.1 response bytes: status line, ``defaults`` (uvicorn's Date),
        the headers, then the body unless ``head``; ``close`` adds Connection: close."""
        key = (head, close)
        built = self._built.get(key)
        if built is not None and built[0] is defaults:
            return built[1]
        lines = [b"HTTP/1.1 %d %s\r\n" % (self.status, _REASONS.get(self.status, b""))]
        lines += [b"%s: %s\r\n" % pair for pair in (*defaults, *self.headers)]
        if close:
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        if not head:
            lines.append(self.body)
        raw = b"".join(lines)
        self._built[key] = (defaults, raw)  # four keys at most, each kept current
        return raw


def plain(status: int, body: bytes, extra: Sequence[tuple[bytes, bytes]] = ()) -> Answer:
    """A short text answer."""
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", NO_CACHE),
        *extra,
    ]
    return Answer(status, headers, body)


def html_page(status: int, page: str, extra: Sequence[tuple[bytes, bytes]] = ()) -> Answer:
    """An HTML page with a strict content security policy."""
    body = page.encode("utf-8")
    headers = [*HTML_HEADERS, (b"content-length", str(len(body)).encode("ascii")), *extra]
    return Answer(status, headers, body)


PIXEL = Answer(200, GIF_HEADERS, GIF)
NOT_FOUND = plain(404, b"Not found\n")
NOT_ALLOWED = plain(405, b"Method not allowed\n", [(b"allow", b"GET, HEAD")])
FAILED = plain(500, b"Internal server error\n")


def with_headers(answer: Answer, extra: Sequence[tuple[bytes, bytes]]) -> Answer:
    """``answer`` with more headers (a fresh record: the shared ones stay as they are)."""
    return Answer(answer.status, [*answer.headers, *extra], answer.body)


@dataclass(slots=True)  # never changed once built; not frozen (docs/performance.md#records)
class Pending:
    """An answer to send once its hit is committed ("answered" implies "on disk")."""

    committed: Commit
    answer: Answer

