"""The ASGI application: raw fast paths for tracking, Starlette for the rest.

The pixel is the hot path (every open of every tracked email), so /o/, /c/ and
/claim/ are answered by plain ASGI code in front of Starlette; health and the event
stream go through Starlette routing.

A claim link works once and for ``claim.LINK_SECONDS`` after minting; a valid claim
cookie on a tracking request is renewed in the answer (sliding expiry, claim.py).
Open streams can be closed when their user is removed or rotated
(:class:`RevocableStream`, docs/promises.md#isolation).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from mailbeacon.core import tokens
from mailbeacon.core.pixel import GIF
from mailbeacon.core.tokens import Kind
from mailbeacon.server import claim
from mailbeacon.server.reader import Reader
from mailbeacon.server.tracker import Tracker
from mailbeacon.server.users import hash_token

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
<p>A claim link works once, within 10 minutes of being made. Get a fresh one from
MailBeacon's settings ("Test tracking").</p></body></html>
"""
CLOSE_REVOKED = 1008  # policy violation: the user was removed or their key rotated
_MAX_TOKEN_CHARS = 512


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
        clock: Callable[[], float] = time.time,
        database_health: Callable[[], Awaitable[bool]] | None = None,
        routes: Sequence[BaseRoute] = (),
    ) -> None:
        self._tracker = tracker
        self._database_health = database_health
        self._secret = secret
        self._secure = secure_cookies
        self._clock = clock
        self._used_claims = claim.UsedClaims()
        self._rest = Starlette(
            routes=[
                Route("/healthz", self._healthz, methods=["GET", "HEAD"]),
                WebSocketRoute("/v1/stream", stream),
                *routes,  # the team's (server/team_service.py)
            ]
        )
        # Starlette would answer /healthz/ with a redirect built from the Host header:
        # the server redirects nowhere but to minted targets (docs/interfaces.md).
        self._rest.router.redirect_slashes = False

    async def _healthz(self, request: Request) -> Response:
        body = await _healthz_body(self._database_health)
        # 503 when the database does not answer, for load balancers that should send
        # traffic to an instance that still reaches it (?database=required).
        status = 200
        if request.query_params.get("database") == "required" and body.get("database") not in (
            None, "ok"
        ):
            status = 503
        return JSONResponse(body, status_code=status, headers={"cache-control": "no-store"})

    def use_tracker(self, tracker: Tracker) -> None:
        """Answer from now on with ``tracker`` (a fresh one forgets every verified token:
        what the server does when users were removed or rotated)."""
        self._tracker = tracker

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
        headers = GIF_HEADERS
        if path.endswith(".gif"):
            client = scope.get("client")
            peer = client[0] if client else ""
            await self._tracker.open(path[3:-4], method, peer, scope["headers"])
            renewed = self._renewal(path[3:-4], scope["headers"])
            if renewed is not None:
                headers = [*GIF_HEADERS, (b"set-cookie", renewed)]
        # Always the image, whatever the token: a broken-image icon helps nobody.
        await _respond(send, 200, headers, GIF)

    def _renewal(self, token: str, request_headers: list[tuple[bytes, bytes]]) -> bytes | None:
        """A renewed claim cookie when the request carries a valid one for the token's
        user (sliding expiry, claim.py); None for every other request."""
        cookie: bytes | None = None
        for name, value in request_headers:
            if name == b"cookie":
                cookie = value if cookie is None else cookie + b"; " + value
        if cookie is None or claim.COOKIE_PREFIX.encode("ascii") not in cookie:
            return None
        user_id = tokens.peek_user(token)
        if user_id is None:
            return None
        return claim.renewal(self._secret, user_id, cookie, self._secure, self._clock())

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
        renewed = self._renewal(path[3:], scope["headers"])
        if renewed is not None:
            headers.append((b"set-cookie", renewed))
        await _respond(send, 302, headers)

    async def _claim(self, scope: Scope, path: str, send: Send) -> None:
        method: str = scope["method"]
        if method not in _TRACKING_METHODS:
            await _not_allowed(send)
            return
        token = path[len("/claim/") :]
        claims = await self._tracker.verified(token, Kind.CLAIM)
        now = self._clock()
        # Once, and only soon after minting (claim.py): a leaked link claims nothing.
        if claims is None or not self._used_claims.use(token, claims.minted_at, now):
            body = _CLAIM_FAILED.encode("utf-8")
            headers = [*_HTML_HEADERS, (b"content-length", str(len(body)).encode("ascii"))]
            await _respond(send, 404, headers, body)
            return
        user_id = claims.user_id
        body = _CLAIM_PAGE.format(user=html.escape(str(user_id))).encode("utf-8")
        cookie = claim.set_cookie_header(self._secret, user_id, self._secure, now)
        headers = [
            *_HTML_HEADERS,
            (b"content-length", str(len(body)).encode("ascii")),
            (b"set-cookie", cookie),
        ]
        await _respond(send, 200, headers, body)


class RevocableStream:
    """The event stream endpoint, with its open connections closable per user.

    When the operator removes a user or rotates their key (another process; see
    users.py), the server calls :meth:`close_user`: each of that user's streams is
    closed with 1008 ("access revoked"); reconnecting with the old API token is then
    refused by the stream's own authentication.
    """

    def __init__(self, stream: ASGIApp, reader: Reader) -> None:
        self._stream = stream
        self._reader = reader
        self._open: dict[int, set[asyncio.Event]] = {}

    def users(self) -> set[int]:
        """The users with a stream open now."""
        return set(self._open)

    def close_user(self, user_id: int) -> int:
        """Close every open stream of ``user_id``; returns how many."""
        events = self._open.get(user_id, set())
        for revoked in events:
            revoked.set()
        return len(events)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user_id = await self._user(scope)
        if user_id is None:  # refused by the stream itself, exactly as before
            await self._stream(scope, receive, send)
            return
        revoked = asyncio.Event()
        self._open.setdefault(user_id, set()).add(revoked)
        state = {"accepted": False, "closed": False}

        async def watched_send(message: Message) -> None:
            if message["type"] == "websocket.accept":
                state["accepted"] = True
            elif message["type"] == "websocket.close":
                state["closed"] = True
            await send(message)

        async def revocable_receive() -> Message:
            if revoked.is_set():
                return {"type": "websocket.disconnect", "code": CLOSE_REVOKED}
            pending = asyncio.ensure_future(receive())
            waiter = asyncio.ensure_future(revoked.wait())
            try:
                await asyncio.wait({pending, waiter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                if not pending.done():
                    pending.cancel()
            if pending.done() and not pending.cancelled():
                return pending.result()
            return {"type": "websocket.disconnect", "code": CLOSE_REVOKED}

        try:
            await self._stream(scope, revocable_receive, watched_send)
            if revoked.is_set() and state["accepted"] and not state["closed"]:
                with contextlib.suppress(OSError, RuntimeError):
                    await send(
                        {"type": "websocket.close", "code": CLOSE_REVOKED,
                         "reason": "access revoked by the operator"}
                    )
        finally:
            events = self._open.get(user_id)
            if events is not None:
                events.discard(revoked)
                if not events:
                    del self._open[user_id]

    async def _user(self, scope: Scope) -> int | None:
        # One lookup per connection (streams are long-lived): the id to close it by.
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                token = token.strip()
                if scheme.lower() != "bearer" or not token or len(token) > _MAX_TOKEN_CHARS:
                    return None
                user = await self._reader.user_by_token_hash(hash_token(token))
                return None if user is None else user.id
        return None


async def _not_allowed(send: Send) -> None:
    await _plain(send, 405, _NOT_ALLOWED, [(b"allow", b"GET, HEAD")])


async def _healthz_body(database_health: Callable[[], Awaitable[bool]] | None) -> dict[str, str]:
    if database_health is None:
        return {"status": "ok"}  # SQLite: the file is this process's own
    # The instance answers recipients either way (the outage spool keeps their hits):
    # "database" tells the operator, and a load balancer that routes by it, whether
    # PostgreSQL answers this instance.
    answers = await database_health()
    return {"status": "ok", "database": "ok" if answers else "unreachable"}
