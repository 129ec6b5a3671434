"""Helpers for driving the real tracking server: recipients, tokens, stream subscribers."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from websockets.asyncio.client import ClientConnection, connect

from mailbeacon.core import tokens
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.server.config import Database, ServerConfig
from mailbeacon.server.tracking_server import TrackingServer

RECIPIENT = "127.0.0.9"  # a recipient's machine, as the server sees it
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
AN_HOUR_AGO = 3600  # minted long enough ago that no timing rule calls the hit a bot
WAIT = 5.0  # seconds any single expected thing may take


@asynccontextmanager
async def running_server(db: Database, **options: Any) -> AsyncIterator[TrackingServer]:
    """A real server on a free loopback port, stopped afterwards."""
    server = TrackingServer(ServerConfig(db_path=db, host="127.0.0.1", port=0, **options))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def serving_process(
    profile: Path, db: Database, *options: str, log: list[str] | None = None
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """``mailbeacon server serve`` as a child process on a free port: (process, base URL).

    Its log (stderr) is read all along, so a server that logs a lot (an outage) never
    blocks writing it, and waiting for its exit never hangs on an unread pipe (asyncio
    reports the exit only once every pipe has closed); its lines go to ``log`` when
    given. Killed afterwards if it is still running.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mailbeacon", "--profile", str(profile),
        "server", "serve", "--listen", "127.0.0.1:0", "--db", db_option(db), *options,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    drain: asyncio.Task[None] | None = None
    try:
        assert process.stderr is not None
        async with asyncio.timeout(3 * WAIT):
            line = (await process.stderr.readline()).decode()
        assert "listening on " in line, line
        drain = asyncio.create_task(_drained(process.stderr, [] if log is None else log))
        yield process, line.split("listening on ", 1)[1].split(" ", 1)[0]
    finally:
        if process.returncode is None:
            process.kill()
        async with asyncio.timeout(3 * WAIT):
            await process.wait()
            if drain is not None:
                await drain


async def _drained(stream: asyncio.StreamReader, lines: list[str]) -> None:
    """Read ``stream`` to its end, a line at a time, into ``lines``."""
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # a line longer than the reader's limit: read on
            line = await stream.read(65536)
        if not line:
            return
        lines.append(line.decode("utf-8", "replace").rstrip("\n"))


def db_option(db: Database) -> str:
    """The ``--db`` value naming ``db``."""
    return str(db) if isinstance(db, Path) else db.url


async def add_user_process(profile: Path, db: Database, name: str = "alice") -> Enrollment:
    """``mailbeacon server add-user NAME --json`` as a child process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mailbeacon", "--profile", str(profile),
        "server", "add-user", name, "--db", db_option(db), "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    async with asyncio.timeout(3 * WAIT):
        out, _ = await process.communicate()
    assert process.returncode == 0
    return Enrollment.decode(json.loads(out)["enrollment_key"])


def served_at(enrollment: Enrollment, url: str) -> Enrollment:
    """The same user, reached at ``url`` (a test server's real address)."""
    return Enrollment(url, enrollment.user_id, enrollment.api_token, enrollment.signing_key)


@dataclass(frozen=True)
class Mail:
    """One tracked email's keys, as the agent would mint them."""

    enrollment: Enrollment
    message: str
    recipient: str | None

    def pixel(self, minted_ago: int = AN_HOUR_AGO) -> str:
        """The pixel URL."""
        token = tokens.mint_open(
            self.enrollment.signing_key,
            self.enrollment.user_id,
            self.message,
            self.recipient,
            int(time.time()) - minted_ago,
        )
        return f"{self.enrollment.server_url}/o/{token}.gif"

    def click_token(self, target: str, link: int = 0, minted_ago: int = AN_HOUR_AGO) -> str:
        """A link token."""
        return tokens.mint_click(
            self.enrollment.signing_key,
            self.enrollment.user_id,
            self.message,
            self.recipient,
            int(time.time()) - minted_ago,
            link,
            target,
        )

    def click(self, target: str, link: int = 0, minted_ago: int = AN_HOUR_AGO) -> str:
        """The tracked link URL."""
        return f"{self.enrollment.server_url}/c/{self.click_token(target, link, minted_ago)}"


def new_mail(enrollment: Enrollment, recipient: bool = True) -> Mail:
    """Fresh keys for one email."""
    return Mail(
        enrollment,
        tokens.new_message_key(),
        tokens.new_recipient_key() if recipient else None,
    )


def claim_url(enrollment: Enrollment) -> str:
    """The rep's browser-claim URL."""
    token = tokens.mint_claim(enrollment.signing_key, enrollment.user_id, int(time.time()))
    return f"{enrollment.server_url}/claim/{token}"


def recipient(address: str = RECIPIENT, **options: Any) -> httpx.AsyncClient:
    """An HTTP client on another loopback address, with a browser's user agent."""
    headers = {"User-Agent": CHROME, **options.pop("headers", {})}
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(local_address=address),
        headers=headers,
        follow_redirects=False,
        timeout=WAIT,
        **options,
    )


def stream_url(server: TrackingServer, after: int = 0) -> str:
    """The WebSocket URL of the event stream."""
    return f"ws://127.0.0.1:{server.port}/v1/stream?after={after}"


@asynccontextmanager
async def subscribed(
    server: TrackingServer,
    api_token: str,
    after: int = 0,
    local_address: str | None = None,
    **options: Any,
) -> AsyncIterator[ClientConnection]:
    """An open stream subscription (the websockets client, as the agent uses)."""
    if local_address is not None:
        options["local_addr"] = (local_address, 0)
    async with connect(
        stream_url(server, after),
        additional_headers={"Authorization": f"Bearer {api_token}"},
        open_timeout=WAIT,
        **options,
    ) as websocket:
        yield websocket


async def next_message(websocket: ClientConnection, wait: float = WAIT) -> dict[str, Any]:
    """The next stream message, parsed."""
    async with asyncio.timeout(wait):
        raw = await websocket.recv()
    data: dict[str, Any] = json.loads(raw)
    return data


async def next_event(websocket: ClientConnection, wait: float = WAIT) -> dict[str, Any]:
    """The next stream message that is an event (revisions skipped)."""
    async with asyncio.timeout(wait):
        while True:
            message = await next_message(websocket, wait)
            if message["type"] != "revise":
                return message


async def raw_request(
    port: int, request: bytes, local_address: str = RECIPIENT, limit: int = 1 << 20
) -> tuple[int, dict[str, str], bytes]:
    """Send exact request bytes (no client-side URL clean-up) and read the response."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(local_address, 0), limit=limit
    )
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(WAIT):
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            body = await reader.readexactly(length) if length else b""
        return status, headers, body
    finally:
        writer.close()
        with suppress(ConnectionError, OSError):
            await writer.wait_closed()


def get(path: str, extra: str = "") -> bytes:
    """A minimal GET request for ``path`` as written."""
    return (
        f"GET {path} HTTP/1.1\r\nHost: tracking.test\r\nUser-Agent: {CHROME}\r\n{extra}"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")


def query(db: Database, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (written with ``?`` placeholders) read straight from the database,
    SQLite or PostgreSQL, behind the server's back."""
    if isinstance(db, Path):
        with closing(sqlite3.connect(db)) as conn:
            return [tuple(row) for row in conn.execute(sql, params).fetchall()]
    with psycopg.connect(db.url, autocommit=True) as conn:
        rows = conn.execute(sql.replace("?", "%s").encode(), params).fetchall()
    return [tuple(row) for row in rows]
