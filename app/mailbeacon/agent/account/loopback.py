"""The loopback redirect listener of a native app's browser sign-in (RFC 8252, section 7.3).

It listens on 127.0.0.1 on a port the system picks: the provider accepts any port
for a loopback redirect (RFC 8252, section 7.3), so no fixed port can be taken by
another program. 127.0.0.1 rather than ``localhost``, which may resolve elsewhere
(section 8.3).

The first ``GET /callback`` ends the wait: the listener answers it with a small page
(what to say is the caller's ``answer``: the listener does not know the sign-in's
state) and hands over the query parameters. Anything else — a favicon, a probe,
a second request — gets a 404 and changes nothing. A minimal HTTP/1.1 answer by
hand (one request per connection, ``Connection: close``): the listener lives for
one sign-in, a web framework would be more code than the job.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
CALLBACK_PATH = "/callback"
MAX_HEAD = 16 * 1024  # a redirect carries a code and a state: far below this
READ_SECONDS = 10.0  # a browser's speculative connection may never send a request

# What the browser shows once the provider sent it back: (HTTP status, sentence).
Answer = Callable[[Mapping[str, str]], tuple[int, str]]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class LoopbackRedirect:
    """One sign-in's redirect listener: ``async with``, then :meth:`wait`."""

    def __init__(self, answer: Answer, host: str = HOST) -> None:
        """``answer`` picks the page for the redirect's query parameters."""
        self._answer = answer
        self._host = host
        self._server: asyncio.Server | None = None
        self._result: asyncio.Future[dict[str, str]] | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> LoopbackRedirect:
        self._result = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(self._serve, self._host, 0, limit=MAX_HEAD)
        log.info("sign-in redirect listener on %s", self.redirect_uri)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
        if self._result is not None and not self._result.done():
            self._result.cancel()

    @property
    def port(self) -> int:
        """The port the system gave the listener."""
        if self._server is None:
            raise RuntimeError("the redirect listener is not running")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def redirect_uri(self) -> str:
        """The ``redirect_uri`` to send to the provider."""
        return f"http://{self._host}:{self.port}{CALLBACK_PATH}"

    async def wait(self) -> dict[str, str]:
        """The query parameters of the first redirect that reached the listener."""
        if self._result is None:
            raise RuntimeError("the redirect listener is not running")
        return await asyncio.shield(self._result)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_SECONDS)
            status, text, params = self._respond(head)
            await _send(writer, status, text)
            if params is not None and self._result is not None and not self._result.done():
                self._result.set_result(params)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError):  # fmt: skip
            pass  # a connection that never became a request: nothing to answer
        finally:
            self._writers.discard(writer)
            writer.close()

    def _respond(self, head: bytes) -> tuple[int, str, dict[str, str] | None]:
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or parts[0] != "GET":
            return 405, "MailBeacon's sign-in listener only answers the provider's redirect.", None
        target = urlsplit(parts[1])
        if target.path != CALLBACK_PATH or self._result is None or self._result.done():
            return 404, "Nothing here: this address only takes one sign-in answer.", None
        params = dict(parse_qsl(target.query, keep_blank_values=True))
        status, text = self._answer(params)
        return status, text, params


def page(text: str) -> str:
    """The small HTML page the browser shows: one plain sentence (``text`` escaped)."""
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>MailBeacon</title>'
        "</head><body><h1>MailBeacon</h1>"
        f'<p id="message">{html.escape(text, quote=False)}</p></body></html>'
    )


async def _send(writer: asyncio.StreamWriter, status: int, text: str) -> None:
    body = page(text).encode("utf-8")
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        # The redirect's address holds the code: keep it out of caches and referrers.
        "Cache-Control: no-store\r\n"
        "Referrer-Policy: no-referrer\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")
    writer.write(head + body)
    await writer.drain()
