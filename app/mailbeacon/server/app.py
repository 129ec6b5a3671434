"""The tracking routes' decisions, and the ASGI application around them.

The pixel is the hot path (every open of every tracked email). What /o/, /c/ and
/claim/ answer is decided here once (:meth:`TrackingApp.answer_now` without
waiting, :meth:`TrackingApp.answer` when a user must be looked up) as an
:class:`~mailbeacon.server.answers.Answer`; the hot path (fastpath.py) writes it
straight to the socket, the ASGI path below sends it as messages. Health, the event
stream and the team's routes go through Starlette.

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
from mailbeacon.core.events import EventType
from mailbeacon.core.tokens import Claims, Kind
from mailbeacon.server import claim
from mailbeacon.server.answers import (
    COMMON,
    NOT_ALLOWED,
    NOT_FOUND,
    PIXEL,
    Answer,
    Pending,
    html_page,
    with_headers,
)
from mailbeacon.server.reader import Reader
from mailbeacon.server.tracker import LOOKUP, Lookup, Tracker
from mailbeacon.server.users import hash_token

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_TRACKING_METHODS = ("GET", "HEAD")
# How a route learns a token's claims: at once (Tracker.verified_now), or as awaited.
Verify = Callable[[str, Kind], Claims | Lookup | None]
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


async def _respond(send: Send, answer: Answer) -> None:
    await send({"type": "http.response.start", "status": answer.status,
                "headers": answer.headers})
    await send({"type": "http.response.body", "body": answer.body})


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
            client = scope.get("client")
            answer = await self.answer(
                scope["method"], scope["path"], client[0] if client else "", scope["headers"]
            )
            if answer is not None:
                await _respond(send, answer)
                return
        await self._rest(scope, receive, send)

    def answer_now(
        self, method: str, path: str, peer: str, headers: list[tuple[bytes, bytes]]
    ) -> Answer | Pending | Lookup | None:
        """The answer to a pixel or link request, decided without waiting: an Answer
        to send now, a Pending one to send once its hit is committed, ``LOOKUP`` when
        the token's user must be looked up first (use :meth:`answer`), or None for
        any other path. The hot path (fastpath.py) calls this."""
        if path.startswith("/o/"):
            return self._pixel(method, path, peer, headers, self._tracker.verified_now)
        if path.startswith("/c/"):
            return self._click(method, path, peer, headers, self._tracker.verified_now)
        return None

    async def answer(
        self, method: str, path: str, peer: str, headers: list[tuple[bytes, bytes]]
    ) -> Answer | None:
        """The answer to a tracking request (/o/, /c/, /claim/) once its hit is
        committed, or None for any other path (Starlette's). Both HTTP paths come
        here or to :meth:`answer_now`, which decides the same (answers.py)."""
        if path.startswith("/claim/"):
            return await self._claim(method, path)
        now = self.answer_now(method, path, peer, headers)
        if now is LOOKUP:
            pixel = path.startswith("/o/")
            kind = Kind.OPEN if pixel else Kind.CLICK
            claims = await self._tracker.verified(path[3:-4] if pixel else path[3:], kind)
            decide = self._pixel if pixel else self._click
            now = decide(method, path, peer, headers, lambda _token, _kind: claims)
        if isinstance(now, Pending):
            await now.committed.wait()  # a failure is the recorder's to log
            return now.answer
        assert now is not LOOKUP  # the claims were given
        return now

    def _pixel(
        self, method: str, path: str, peer: str, headers: list[tuple[bytes, bytes]],
        verify: Verify,
    ) -> Answer | Pending | Lookup:
        if method not in _TRACKING_METHODS:
            return NOT_ALLOWED
        if not path.endswith(".gif"):
            # Always the image, whatever the token: a broken-image icon helps nobody.
            return PIXEL
        token = path[3:-4]
        claims = verify(token, Kind.OPEN)
        if claims is LOOKUP:
            return LOOKUP
        renewed = self._renewal(token, headers)
        answer = PIXEL if renewed is None else with_headers(PIXEL, [(b"set-cookie", renewed)])
        if claims is None:
            return answer
        committed = self._tracker.record(claims, EventType.OPEN, method, peer, headers)
        return answer if committed is None else Pending(committed, answer)

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

    def _click(
        self, method: str, path: str, peer: str, headers: list[tuple[bytes, bytes]],
        verify: Verify,
    ) -> Answer | Pending | Lookup:
        if method not in _TRACKING_METHODS:
            return NOT_ALLOWED
        token = path[3:]
        claims = verify(token, Kind.CLICK)
        if claims is LOOKUP:
            return LOOKUP
        location = None if claims is None else self._tracker.location(claims)
        if claims is None or location is None:
            return NOT_FOUND
        extra = [(b"location", location), (b"content-length", b"0"), *COMMON]
        renewed = self._renewal(token, headers)
        if renewed is not None:
            extra.append((b"set-cookie", renewed))
        answer = Answer(302, extra)
        committed = self._tracker.record(claims, EventType.CLICK, method, peer, headers)
        return answer if committed is None else Pending(committed, answer)

    async def _claim(self, method: str, path: str) -> Answer:
        if method not in _TRACKING_METHODS:
            return NOT_ALLOWED
        token = path[len("/claim/") :]
        claims = await self._tracker.verified(token, Kind.CLAIM)
        now = self._clock()
        # Once, and only soon after minting (claim.py): a leaked link claims nothing.
        if claims is None or not self._used_claims.use(token, claims.minted_at, now):
            return html_page(404, _CLAIM_FAILED)
        user_id = claims.user_id
        cookie = claim.set_cookie_header(self._secret, user_id, self._secure, now)
        page = _CLAIM_PAGE.format(user=html.escape(str(user_id)))
        return html_page(200, page, [(b"set-cookie", cookie)])


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


async def _healthz_body(database_health: Callable[[], Awaitable[bool]] | None) -> dict[str, str]:
    if database_health is None:
        return {"status": "ok"}  # SQLite: the file is this process's own
    # The instance answers recipients either way (the outage spool keeps their hits):
    # "database" tells the operator, and a load balancer that routes by it, whether
    # PostgreSQL answers this instance.
    answers = await database_health()
    return {"status": "ok", "database": "ok" if answers else "unreachable"}
