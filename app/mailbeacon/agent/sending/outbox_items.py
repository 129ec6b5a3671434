"""What the outbox holds: items to deliver, their delivery state, the message bytes as
a source read in chunks, the transport it sends through and its retry policy.

A queued message is never loaded whole: :class:`MessageFile` reads it from its spool
file in chunks, so a 25 MB attachment costs one chunk of memory while it is sent.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mailbeacon.core.backoff import Backoff

_NON_ASCII = re.compile(rb"[\x80-\xff]")
# A spool file's first line (envelope and meta) is read back at most this long.
MAX_HEADER_BYTES = 16 * 1024 * 1024
# Messages are written and sent in pieces of this size: memory stays at one piece.
CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A message to deliver: envelope, bytes and free JSON-serialisable ``meta``.

    ``data`` may be given as pieces in order (views of a larger buffer): they are
    written one after another, never joined into a second copy in memory.
    """

    mail_from: str
    recipients: tuple[str, ...]
    data: bytes | tuple[bytes | memoryview, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def pieces(self) -> tuple[bytes | memoryview, ...]:
        """The message as pieces in order."""
        return (self.data,) if isinstance(self.data, bytes) else self.data

    @property
    def size(self) -> int:
        """Its length in bytes."""
        return sum(len(piece) for piece in self.pieces)

    @property
    def eight_bit(self) -> bool:
        """True if any byte is outside ASCII."""
        return any(_NON_ASCII.search(piece) for piece in self.pieces)


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    """Recipients the upstream refused for good, with its reply."""

    recipients: tuple[str, ...]
    code: int | None
    reply: str
    at: float


@dataclass(frozen=True, slots=True)
class ItemState:
    """Delivery progress of one item, persisted next to it."""

    attempts: int = 0
    next_attempt: float = 0.0
    last_error: str = ""
    first_refusal: float | None = None  # first temporary (4xx) answer, for giving up
    delivered_to: tuple[str, ...] = ()
    failures: tuple[DeliveryFailure, ...] = ()
    delivered_notified: bool = False
    failed_notified: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ItemState:
        """Read back what to_json wrote."""
        failures = tuple(
            DeliveryFailure(tuple(f["recipients"]), f["code"], f["reply"], f["at"])
            for f in raw.get("failures", ())
        )
        return cls(
            attempts=int(raw.get("attempts", 0)),
            next_attempt=float(raw.get("next_attempt", 0.0)),
            last_error=str(raw.get("last_error", "")),
            first_refusal=None if raw.get("first_refusal") is None else float(raw["first_refusal"]),
            delivered_to=tuple(raw.get("delivered_to", ())),
            failures=failures,
            delivered_notified=bool(raw.get("delivered_notified", False)),
            failed_notified=bool(raw.get("failed_notified", False)),
        )


class MessageSource(Protocol):
    """The bytes of one message, readable in pieces (a queued message is never loaded whole)."""

    @property
    def size(self) -> int:
        """Length in bytes."""
        ...

    @property
    def eight_bit(self) -> bool:
        """True if any byte is outside ASCII (the upstream then wants BODY=8BITMIME)."""
        ...

    def chunks(self, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        """The message in order, ``chunk_size`` bytes at a time."""
        ...

    async def read(self) -> bytes:
        """The whole message at once."""
        ...


@dataclass(frozen=True, slots=True)
class MessageBytes:
    """A message held in memory."""

    data: bytes

    @property
    def size(self) -> int:
        """Length in bytes."""
        return len(self.data)

    @property
    def eight_bit(self) -> bool:
        """True if any byte is outside ASCII."""
        return not self.data.isascii()

    async def chunks(self, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        """The message ``chunk_size`` bytes at a time."""
        for start in range(0, len(self.data), chunk_size):
            yield self.data[start : start + chunk_size]

    async def read(self) -> bytes:
        """The whole message."""
        return self.data


@dataclass(frozen=True, slots=True)
class MessageFile:
    """A queued message in its spool file, after the header line."""

    path: Path
    offset: int
    size: int
    eight_bit: bool = True

    async def chunks(self, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        """The message ``chunk_size`` bytes at a time (file reads in a worker thread)."""
        for start in range(0, self.size, chunk_size):
            yield await asyncio.to_thread(self._read, start, min(chunk_size, self.size - start))

    async def read(self) -> bytes:
        """The whole message."""
        return await asyncio.to_thread(self._read, 0, self.size)

    def _read(self, start: int, length: int) -> bytes:
        with self.path.open("rb") as stream:
            stream.seek(self.offset + start)
            return stream.read(length)


@dataclass(frozen=True, slots=True)
class QueuedItem:
    """An item in the spool, as callbacks and status views see it (message on disk)."""

    id: str
    mail_from: str
    recipients: tuple[str, ...]
    meta: Mapping[str, Any]
    created: float
    size: int
    path: Path
    state: ItemState = ItemState()
    eight_bit: bool = True

    @property
    def pending(self) -> tuple[str, ...]:
        """Recipients that have neither got the message nor failed for good."""
        done = set(self.state.delivered_to)
        for failure in self.state.failures:
            done.update(failure.recipients)
        return tuple(r for r in self.recipients if r not in done)

    @property
    def message(self) -> MessageFile:
        """The message bytes, to read in chunks."""
        offset = self.path.stat().st_size - self.size
        return MessageFile(self.path, offset, self.size, self.eight_bit)

    def read_data(self) -> bytes:
        """The message bytes (blocking file read)."""
        with self.path.open("rb") as stream:
            stream.readline(MAX_HEADER_BYTES)
            return stream.read()


@dataclass(frozen=True, slots=True)
class SendResult:
    """The upstream took the message for every recipient not in ``refused``."""

    refused: Mapping[str, tuple[int, str]]
    reply: str


class DeliveryError(Exception):
    """Sending failed for all recipients.

    ``permanent``: a 5xx reply, retrying will not help. ``connection``: the
    upstream is unreachable or broke off (or refused our login), so every item
    waits, not just this one.
    """

    def __init__(
        self,
        reply: str,
        *,
        code: int | None = None,
        permanent: bool = False,
        connection: bool = False,
    ) -> None:
        super().__init__(reply)
        self.reply = reply
        self.code = code
        self.permanent = permanent
        self.connection = connection


class Transport(Protocol):
    """Where the outbox sends to (the upstream SMTP server)."""

    async def send(
        self, mail_from: str, recipients: Sequence[str], message: MessageSource
    ) -> SendResult:
        """Send one message; raise DeliveryError when no recipient took it."""
        ...

    async def close(self) -> None:
        """Close any open connection."""
        ...


OnDelivered = Callable[[QueuedItem], Awaitable[None]]
OnFailed = Callable[[QueuedItem, DeliveryFailure], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try again (30 s doubling to 1 h, ±20 %: docs/promises.md#no-mail-lost)
    and when a message the upstream keeps deferring fails for good."""

    base: float = 30.0
    factor: float = 2.0
    cap: float = 3600.0
    jitter: float = 0.2
    give_up_after: float = 5 * 86400.0

    @property
    def backoff(self) -> Backoff:
        """The waits, as the shared backoff rule."""
        return Backoff(first=self.base, factor=self.factor, cap=self.cap, jitter=self.jitter)

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1-based)."""
        return self.backoff.delay(attempts - 1, rng.random)
