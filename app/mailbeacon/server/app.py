"""The ASGI application: raw fast paths for tracking, Starlette for the rest.

The pixel is the hot path (every open of every tracked email), so /o/, /c/ and
/claim/ are answered by plain ASGI code in front of Starlette; health and the event
stream go through Starlette routing.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from mailbeacon.core.pixel import GIF
from mailbeacon.server import claim
from mailbeacon.server.tracker import Tracker

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

NO_CACHE = b"no-store, no-cache, must-revalidate, max-age=0, private"
_COMMON = [
    (b"cache-control", NO_CACHE),
    (b"pragma", b"no-cache"),
    (b"expires", b"Thu, 01 Jan 1970 00:00:00 GMT"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]
# Kept short: the pixel is the hot path and every header costs (uvicorn checks each).
# Cache-Control covers HTTP/1.1 caches and browsers; Pragma the HTTP/1.0 ones.
GIF_HEADERS = [
    (b"content-type", b"image/gif"),
    (b"content-length", str(len(GIF)).encode("ascii")),
    (b"cache-control", NO_CACHE),
    (b"pragma", b"no-cache"),
]
_HTML_HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"content-security-policy", b"default-src 'none'"),
    *_COMMON,
]
_TRACKING_METHODS = ("GET", "HEAD")
_NOT_FOUND = b"Not found\n"
_NOT_ALLOWED = b"Method not allowed\n"
_CLAIM_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MailBeacon: browser claimed</title></head>
<body><h1>This browser is now marked as yours</h1>
<p>Opens and clicks of your tracked emails made in this browser count as your own
(user {user}): they are recorded but never notify you and never count in reports.</p>
</body></html>
"""
_CLAIM_FAILED = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MailBeacon: link not valid</title></head>
<body><h1>This claim link is not valid</h1>
<p>Get a fresh one from MailBeacon's settings ("Test tracking").</p></body></html>
"""


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _plain(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", NO_CACHE),
        *extra,
    ]
    await _respond(send, status, headers, body)


class TrackingApp:
    """The whole HTTP surface of the tracking server."""

    def __init__(
        self,
        tracker: Tracker,
        secret: bytes,
        stream: ASGIApp,
        secure_cookies: bool = False,
    ) -> None:
        self._tracker = tracker
        self._secret = secret
        self._secure = secure_cookies
        self._rest = Starlette(
            routes=[
                Route("/healthz", _healthz, methods=["GET", "HEAD"]),
                WebSocketRoute("/v1/stream", stream),
            ]
        )
        # Starlette would answer /healthz/ with a redirect built from the Host header:
        # the server redirects nowhere but to minted targets (docs/interfaces.md).
        self._rest.router.redirect_slashes = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith("/o/"):
                await self._pixel(scope, path, send)
                return
            if path.startswith("/c/"):
                await self._click(scope, path, send)
                return
            if path.startswith("/claim/"):
                await self._claim(scope, path, send)
                return
        await self._rest(scope, receive, send)

    async def _pixel(self, scope: Scope, path: str, send: Send) -> None:
        method: str = scope["method"]
        if method not in _TRACKING_METHODS:
            await _not_allowed(send)
            return
        if path.endswith(".gif"):
            client = scope.get("client")
            peer = client[0] if client else ""
            await self._tracker.open(path[3:-4], method, peer, scope["headers"])
        # Always the image, whatever the token: a broken-image icon helps nobody.
        await _respond(send, 200, GIF_HEADERS, GIF)

    async def _click(self, scope: Scope, path: str, send: Send) -> None:
        method: str = scope["method"]
        if method not in _TRACKING_METHODS:
            await _not_allowed(send)
            return
        client = scope.get("client")
        peer = client[0] if client else ""
        location = await self._tracker.click(path[3:], method, peer, scope["headers"])
        if location is None:
            await _plain(send, 404, _NOT_FOUND, [])
            return
        headers = [(b"location", location), (b"content-length", b"0"), *_COMMON]
        await _respond(send, 302, headers)

    async def _claim(self, scope: Scope, path: str, send: Send) -> None:
        method: str = scope["method"]
        if method not in _TRACKING_METHODS:
            await _not_allowed(send)
            return
        user_id = await self._tracker.claim(path[len("/claim/") :])
        if user_id is None:
            body = _CLAIM_FAILED.encode("utf-8")
            headers = [*_HTML_HEADERS, (b"content-length", str(len(body)).encode("ascii"))]
            await _respond(send, 404, headers, body)
            return
        body = _CLAIM_PAGE.format(user=html.escape(str(user_id))).encode("utf-8")
        headers = [
            *_HTML_HEADERS,
            (b"content-length", str(len(body)).encode("ascii")),
            (b"set-cookie", claim.set_cookie_header(self._secret, user_id, self._secure)),
        ]
        await _respond(send, 200, headers, body)


async def _not_allowed(send: Send) -> None:
    await _plain(send, 405, _NOT_ALLOWED, [(b"allow", b"GET, HEAD")])


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"}, headers={"cache-control": "no-store"})
