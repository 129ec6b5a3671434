"""Pieces the fault tests share: mail through the relay, a hit generator that retries
until answered, and a TCP proxy that can cut the agent's stream connection."""

from __future__ import annotations

import asyncio
import contextlib
import re
import smtplib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage

import httpx

from tests.e2e.harness import THUNDERBIRD_UA, Rep, html_of, recipient_client
from tests.helpers.smtp import ReceivedEnvelope

PIXEL = re.compile(r'src="(http://[0-9.]+:\d+/o/[A-Za-z0-9_-]+\.gif)"')
TAG = re.compile(r" hit/(\d+)$")


def html_mail(n: int, to: str, subject: str | None = None) -> EmailMessage:
    """A small HTML email with a link and a Message-ID that names it."""
    message = EmailMessage()
    message["From"] = "rep@rep.example"
    message["To"] = to
    message["Subject"] = subject or f"Offer {n}"
    message["Message-ID"] = f"<e2e-{n}@rep.example>"
    message.set_content(f"Offer {n}: https://shop.example/{n}")
    message.add_alternative(
        f'<p>Offer {n}: <a href="https://shop.example/{n}">see it</a></p>', subtype="html"
    )
    return message


def send_all(rep: Rep, messages: list[EmailMessage], timeout: float = 60.0) -> None:
    """Hand every message to the relay over one authenticated session (blocking)."""
    with smtplib.SMTP("127.0.0.1", rep.relay_port, timeout=timeout) as client:
        client.login("mailbeacon", rep.relay_password)
        for message in messages:
            client.send_message(message)


async def send_all_async(rep: Rep, messages: list[EmailMessage]) -> None:
    """``send_all`` off the event loop."""
    await asyncio.to_thread(send_all, rep, messages)


def pixel_of(delivered: ReceivedEnvelope) -> str:
    """The one pixel URL in a delivered message."""
    [pixel] = PIXEL.findall(html_of(delivered.data))
    return str(pixel)


def tagged_ua(n: int) -> str:
    """A viewer's User-Agent that says which test hit it was."""
    return f"{THUNDERBIRD_UA} hit/{n}"


def tag_of(user_agent: str) -> int | None:
    """The hit number in a stored User-Agent, if any."""
    found = TAG.search(user_agent or "")
    return int(found.group(1)) if found else None


@dataclass
class Hammer:
    """``count`` pixel hits from a recipient address, each retried until answered 200.

    A hit that fails (server down, connection reset) waits for ``up`` before it tries
    again, so a dead server is not spun against; the fault-maker clears ``up`` before
    it breaks something and sets it once it is back.
    """

    url_for: Callable[[int], str]
    count: int
    workers: int = 16
    max_attempts: int = 500
    up: asyncio.Event = field(default_factory=asyncio.Event)
    answered: list[int] = field(default_factory=list)
    failures: int = 0
    finished: bool = False
    allowed: int | None = None  # hits numbered below this may go (None: all)
    _progress: asyncio.Condition = field(default_factory=asyncio.Condition)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sending in the background."""
        self._task = asyncio.create_task(self._run())

    async def done(self) -> None:
        """Until every hit was answered (re-raises what went wrong)."""
        assert self._task is not None
        await self._task

    async def _run(self) -> None:
        self.up.set()
        numbers = iter(range(self.count))
        try:
            async with recipient_client(timeout=10.0) as client, asyncio.TaskGroup() as group:
                for _ in range(self.workers):
                    group.create_task(self._worker(client, numbers))
        finally:
            async with self._progress:
                self.finished = True
                self._progress.notify_all()

    async def _worker(self, client: httpx.AsyncClient, numbers: Iterator[int]) -> None:
        for n in numbers:  # shared by the workers: each number is taken once
            async with self._progress:
                await self._progress.wait_for(self._may_go(n))
            await self._hit(client, n)

    def _may_go(self, n: int) -> Callable[[], bool]:
        return lambda: self.allowed is None or n < self.allowed

    async def _hit(self, client: httpx.AsyncClient, n: int) -> None:
        for _attempt in range(self.max_attempts):
            await self.up.wait()
            try:
                response = await client.get(self.url_for(n), headers={"User-Agent": tagged_ua(n)})
            except httpx.TransportError:
                self.failures += 1
                continue
            assert response.status_code == 200, response.status_code
            async with self._progress:
                self.answered.append(n)
                self._progress.notify_all()
            return
        raise AssertionError(f"hit {n} was never answered in {self.max_attempts} attempts")

    async def release(self, upto: int) -> None:
        """Let hits numbered below ``upto`` go."""
        async with self._progress:
            self.allowed = upto
            self._progress.notify_all()

    async def until_answered(self, count: int, within: float = 60.0) -> None:
        """Wait until at least ``count`` hits were answered."""
        async with asyncio.timeout(within), self._progress:
            await self._progress.wait_for(lambda: len(self.answered) >= count or self.finished)
        if len(self.answered) < count:
            await self.done()  # raises what stopped it
            raise AssertionError(f"only {len(self.answered)} of {count} hits were answered")


@dataclass
class _Pipe:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    downstream_bytes: int = 0


class CuttingProxy:
    """A TCP proxy in front of the tracking server that can cut every connection."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.accepted = 0
        self.cuts = 0
        self._pipes: list[_Pipe] = []
        self._changed = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self._abort_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pipe = _Pipe(writer, up_writer)
        async with self._changed:
            self.accepted += 1
            self._pipes.append(pipe)
            self._changed.notify_all()
        tasks = [
            asyncio.create_task(self._copy(reader, up_writer, None)),
            asyncio.create_task(self._copy(up_reader, writer, pipe)),
        ]
        self._tasks.update(tasks)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.difference_update(tasks)
            writer.transport.abort()
            up_writer.transport.abort()
            async with self._changed:
                if pipe in self._pipes:
                    self._pipes.remove(pipe)
                self._changed.notify_all()

    async def _copy(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, pipe: _Pipe | None
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
                if pipe is not None:
                    async with self._changed:
                        pipe.downstream_bytes += len(chunk)
                        self._changed.notify_all()

    def _abort_all(self) -> int:
        pipes, self._pipes = self._pipes, []
        for pipe in pipes:
            pipe.client.transport.abort()  # a reset, as a dropped NAT entry would look
            pipe.upstream.transport.abort()
        return len(pipes)

    async def cut_when_streaming(self, min_bytes: int = 4096, within: float = 30.0) -> None:
        """Wait until a connection has carried ``min_bytes`` to the agent, then cut it."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(
                lambda: any(p.downstream_bytes >= min_bytes for p in self._pipes)
            )
            self.cuts += 1 if self._abort_all() else 0

    async def until_accepted(self, count: int, within: float) -> None:
        """Wait until ``count`` connections were accepted in all."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: self.accepted >= count)
