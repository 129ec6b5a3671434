"""The durable outbox: accepted mail waits here, on disk, until the upstream takes it.

Spool layout (under the profile's data dir, e.g. ``data/outbox``)::

    tmp/<id>.eml      being written; anything here at start is an unfinished enqueue
    queue/<id>.eml    one item: a header line (JSON: sender, recipients, meta) + the message
    queue/<id>.json   its delivery state (attempts, next attempt, last error, who has it)
    sent/<id>.eml     delivered to every recipient; on_delivered still to be called
    failed/<id>.eml   kept after a permanent failure, with failed/<id>.json (the replies)

Durability (DESIGN 5, "No mail lost"): :meth:`Outbox.enqueue` returns only once
the item is written, fsynced and renamed into ``queue/`` and the folder is
fsynced, so a relay that answers 250 after it can be killed at any moment.
Progress is recorded the same way: right after the upstream accepts a message
it is renamed to ``sent/`` (fsynced) before anything else happens.

The one remaining duplicate window: killed after the upstream answered 250 to
DATA but before that rename reached the disk (one rename + fsync, about a
millisecond), the item is still queued and is sent once more on restart.
Callbacks are at least once: ``on_delivered``/``on_failed`` run again after a
restart if the process died before they returned.

Items are delivered oldest first, one at a time over a reused upstream
connection. Temporary failures (4xx, connection errors) are retried with
capped exponential backoff and jitter. A message the upstream keeps answering
4xx for ``give_up_after`` (from its first 4xx) fails permanently; while the
upstream is merely unreachable (the rep is offline) mail waits indefinitely. Permanent failures
(5xx) keep the message in ``failed/`` and call ``on_failed``. When only some
recipients are refused, the others get the message and the refused ones get a
failure record (or a retry, for 4xx).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import heapq
import itertools
import json
import logging
import os
import random
import re
import secrets
import shutil
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Protocol

log = logging.getLogger(__name__)

MAGIC = b"MBQ1 "
_NON_ASCII = re.compile(rb"[\x80-\xff]")
# Room kept free beyond a message's own size (its header, state files, the records).
SPACE_MARGIN = 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024 * 1024
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
    """Capped exponential backoff with jitter, and when to give up."""

    base: float = 30.0
    factor: float = 2.0
    cap: float = 3600.0
    jitter: float = 0.2
    give_up_after: float = 5 * 86400.0

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1-based)."""
        raw = min(self.cap, self.base * self.factor ** max(0, attempts - 1))
        spread = raw * self.jitter
        return max(0.0, min(self.cap, raw + rng.uniform(-spread, spread)))


class Outbox:
    """The spool folder and its delivery worker; ``await start()`` before use."""

    def __init__(
        self,
        spool_dir: Path,
        transport: Transport,
        *,
        on_delivered: OnDelivered | None = None,
        on_failed: OnFailed | None = None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        stop_timeout: float = 30.0,
    ) -> None:
        """``clock`` and ``sleep`` are injectable so tests can run retries in virtual time."""
        self._root = spool_dir
        self._tmp = spool_dir / "tmp"
        self._queue = spool_dir / "queue"
        self._sent = spool_dir / "sent"
        self._failed = spool_dir / "failed"
        self._transport = transport
        self._on_delivered = on_delivered
        self._on_failed = on_failed
        self._policy = policy or RetryPolicy()
        self._clock = clock
        self._sleeper = sleep
        self._rng = rng or random.Random()
        self._stop_timeout = stop_timeout
        self._items: dict[str, QueuedItem] = {}
        self._ready: list[str] = []  # heap of due item ids: oldest first
        self._waiting: list[tuple[float, str]] = []  # heap of (next attempt, id)
        self._paused_until = 0.0
        self._connection_failures = 0
        self._blocked: str | None = None
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._drained = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._stopping = False

    # -- public API ---------------------------------------------------------------

    async def start(self) -> None:
        """Recover the spool (oldest first) and start delivering."""
        if self._worker is not None:
            return
        self._stopping = False
        loaded = await asyncio.to_thread(self._recover)
        # The folder is the truth: what was enqueued before start() is on disk too.
        self._items.clear()
        self._ready.clear()
        self._waiting.clear()
        for item in loaded:
            self._items[item.id] = item
            self._schedule(item)
        log.info("outbox: %d message(s) waiting", len(self._items))
        if not self._items:
            self._drained.set()
        self._worker = asyncio.create_task(self._run(), name="outbox-delivery")

    async def stop(self) -> None:
        """Finish the delivery in progress (bounded), then stop."""
        worker, self._worker = self._worker, None
        if worker is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(worker), self._stop_timeout)
        except TimeoutError:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        await self._transport.close()

    async def enqueue(self, item: OutboxItem) -> str:
        """Write one item durably; returns its id only once it is safe on disk."""
        return (await self.enqueue_many([item]))[0]

    async def ensure_space(self, size: int) -> None:
        """Raise OSError (ENOSPC) unless the spool's disk has room for ``size`` bytes and a
        margin: checked before anything about a message is written, so a full disk
        refuses it whole instead of half-recording it."""
        self._ensure_dirs()
        free = (await asyncio.to_thread(shutil.disk_usage, self._root)).free
        if free < size + SPACE_MARGIN:
            raise OSError(
                errno.ENOSPC,
                f"not enough free disk space for the outbox in {self._root} "
                f"({free} bytes free, {size + SPACE_MARGIN} needed)",
            )

    async def enqueue_many(self, items: Sequence[OutboxItem]) -> list[str]:
        """Write several items (e.g. per-recipient copies) durably, in one fsync batch."""
        now = self._clock()
        # A scan of every byte: off the event loop for a large message.
        eight_bit = await asyncio.to_thread(lambda: [item.eight_bit for item in items])
        prepared = [
            (self._new_id(), self._header(item, now, wide), item)
            for item, wide in zip(items, eight_bit, strict=True)
        ]
        await asyncio.to_thread(self._write_new, prepared)
        ids = []
        for (item_id, _, item), wide in zip(prepared, eight_bit, strict=True):
            queued = QueuedItem(
                id=item_id,
                mail_from=item.mail_from,
                recipients=tuple(item.recipients),
                meta=dict(item.meta),
                created=now,
                size=item.size,
                path=self._queue / f"{item_id}.eml",
                eight_bit=wide,
            )
            self._items[item_id] = queued
            self._schedule(queued)
            ids.append(item_id)
        self._idle.clear()
        self._drained.clear()
        self._wake.set()
        return ids

    def pending(self) -> list[QueuedItem]:
        """Items still to deliver, oldest first."""
        return [self._items[i] for i in sorted(self._items)]

    @property
    def blocked_reason(self) -> str | None:
        """Why nothing is going out (the upstream is unreachable or refused our login)."""
        return self._blocked

    def failed(self) -> list[QueuedItem]:
        """Items kept after a permanent failure, oldest first (reads the folder)."""
        items = []
        for path in sorted(self._failed.glob("*.eml")):
            item = self._load(path, path.with_suffix(".json"))
            if item is not None:
                items.append(item)
        return items

    def retry_now(self) -> None:
        """Try every waiting item now (the rep's "Retry now")."""
        self._paused_until = 0.0
        self._connection_failures = 0
        self._waiting.clear()
        for item_id, item in self._items.items():
            self._items[item_id] = replace(item, state=replace(item.state, next_attempt=0.0))
            heapq.heappush(self._ready, item_id)
        self._idle.clear()
        self._wake.set()

    async def retry_failed(self, item_id: str) -> None:
        """Put a failed item back into the queue for the recipients that failed."""
        path = self._failed / f"{item_id}.eml"
        item = await asyncio.to_thread(self._load, path, path.with_suffix(".json"))
        if item is None:
            raise KeyError(item_id)
        state = ItemState(delivered_to=item.state.delivered_to)
        target = self._queue / path.name
        await asyncio.to_thread(self._requeue, item, state, target)
        queued = replace(item, path=target, state=state)
        self._items[item_id] = queued
        self._drained.clear()
        self._schedule(queued)
        self._idle.clear()
        self._wake.set()

    async def wait_drained(self, within: float) -> None:
        """Wait until every queued item was delivered or failed; TimeoutError after ``within``."""
        async with asyncio.timeout(within):
            await self._drained.wait()

    async def wait_idle(self, within: float) -> None:
        """Wait until the worker has nothing due right now; TimeoutError after ``within``."""
        async with asyncio.timeout(within):
            await self._idle.wait()

    # -- worker -------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._notify_recovered()
        except Exception:
            log.exception("outbox: could not finish callbacks left from the last run")
        while not self._stopping:
            self._wake.clear()
            item = self._next_due()
            if item is None:
                self._idle.set()
                await self._sleep(self._seconds_to_next())
                continue
            self._idle.clear()
            try:
                await self._deliver(item)
            except Exception:
                # A bug or a disk problem must not stop the worker: keep the item, retry later.
                log.exception("outbox: could not process item %s", item.id)
                later = self._clock() + self._policy.delay(1, self._rng)
                self._items[item.id] = replace(item, state=replace(item.state, next_attempt=later))
                self._schedule(self._items[item.id])
                self._drained.clear()
        self._idle.set()

    async def _sleep(self, seconds: float | None) -> None:
        """Until ``seconds`` passed (by the injected sleep) or something woke the worker."""
        tasks: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._wake.wait())}
        if seconds is not None:
            tasks.add(asyncio.ensure_future(self._sleeper(seconds)))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _schedule(self, item: QueuedItem, at: float | None = None) -> None:
        when = item.state.next_attempt if at is None else at
        if when <= self._clock():
            heapq.heappush(self._ready, item.id)
        else:
            heapq.heappush(self._waiting, (when, item.id))

    def _next_due(self) -> QueuedItem | None:
        now = self._clock()
        while self._waiting and self._waiting[0][0] <= now:
            heapq.heappush(self._ready, heapq.heappop(self._waiting)[1])
        if now < self._paused_until:
            return None
        while self._ready:
            item = self._items.get(heapq.heappop(self._ready))
            # Entries are never removed from the heaps, only skipped once stale.
            if item is not None and item.state.next_attempt <= now:
                return item
        return None

    def _seconds_to_next(self) -> float | None:
        now = self._clock()
        times = []
        if self._ready:
            times.append(self._paused_until)
        if self._waiting:
            times.append(max(self._waiting[0][0], self._paused_until))
        return max(0.0, min(times) - now) if times else None

    async def _deliver(self, item: QueuedItem) -> None:
        recipients = item.pending
        if not recipients:
            await self._finish(item)
            return
        try:
            result = await self._transport.send(item.mail_from, recipients, item.message)
        except DeliveryError as error:
            await self._after_error(item, recipients, error)
            return
        self._connection_failures = 0
        self._blocked = None
        await self._after_result(item, recipients, result)

    async def _after_result(
        self, item: QueuedItem, recipients: tuple[str, ...], result: SendResult
    ) -> None:
        now = self._clock()
        accepted = tuple(r for r in recipients if r not in result.refused)
        temporary = {r: v for r, v in result.refused.items() if 400 <= v[0] < 500}
        permanent = {r: v for r, v in result.refused.items() if r not in temporary}
        first_refusal = item.state.first_refusal if temporary else None
        if first_refusal is None and temporary:
            first_refusal = now
        if temporary and now - (first_refusal or now) >= self._policy.give_up_after:
            permanent.update(_gave_up(temporary))
            temporary = {}
        failures = item.state.failures + _group_failures(permanent, now)
        state = replace(
            item.state, delivered_to=item.state.delivered_to + accepted, failures=failures
        )
        if not temporary:
            await self._finish(replace(item, state=state))
            return
        attempts = state.attempts + 1
        code, text = next(iter(temporary.values()))
        state = replace(
            state,
            attempts=attempts,
            next_attempt=now + self._policy.delay(attempts, self._rng),
            last_error=f"{code} {text}",
            first_refusal=first_refusal,
        )
        log.info(
            "outbox: %s: %d recipient(s) deferred (%s %s)", item.id, len(temporary), code, text
        )
        await self._save_state(item, state)

    async def _after_error(
        self, item: QueuedItem, recipients: tuple[str, ...], error: DeliveryError
    ) -> None:
        now = self._clock()
        first_refusal = item.state.first_refusal
        if not error.permanent and not error.connection and first_refusal is None:
            first_refusal = now
        if (
            not error.permanent
            and not error.connection
            and first_refusal is not None
            and now - first_refusal >= self._policy.give_up_after
        ):
            days = self._policy.give_up_after / 86400
            error = DeliveryError(
                f"gave up after {days:g} days of temporary failures: {error.reply}",
                code=error.code,
                permanent=True,
            )
        if error.permanent:
            log.warning("outbox: %s refused for good: %s", item.id, error.reply)
            failure = DeliveryFailure(recipients, error.code, error.reply, now)
            state = replace(item.state, failures=(*item.state.failures, failure))
            await self._finish(replace(item, state=state))
            return
        attempts = item.state.attempts + 1
        delay = self._policy.delay(attempts, self._rng)
        if error.connection:
            # The upstream is the problem, not this item: every item waits, this one
            # stays first in line.
            self._connection_failures += 1
            delay = self._policy.delay(self._connection_failures, self._rng)
            self._paused_until = now + delay
            self._blocked = error.reply
            next_attempt = now
        else:
            next_attempt = now + delay
        log.info("outbox: %s deferred for %.0fs: %s", item.id, delay, error.reply)
        state = replace(
            item.state,
            attempts=attempts,
            next_attempt=next_attempt,
            last_error=error.reply,
            first_refusal=first_refusal,
        )
        await self._save_state(item, state)

    async def _save_state(self, item: QueuedItem, state: ItemState) -> None:
        updated = replace(item, state=state)
        await asyncio.to_thread(self._write_json, self._queue / f"{item.id}.json", state.to_json())
        self._items[item.id] = updated
        self._schedule(updated)

    async def _finish(self, item: QueuedItem) -> None:
        """Every recipient either has the message or failed for good."""
        self._items.pop(item.id, None)
        try:
            await self._settle(item)
        finally:
            if not self._items:
                self._drained.set()

    async def _settle(self, item: QueuedItem) -> None:
        if not item.state.failures:
            sent = self._sent / item.path.name
            await asyncio.to_thread(self._move, item.path, sent, remove_state=True)
            item = replace(item, path=sent)
            log.info("outbox: %s delivered to %d recipient(s)", item.id, len(item.recipients))
            await self._call_delivered(item)
            await asyncio.to_thread(_unlink, sent)
            return
        kept = self._failed / item.path.name
        await asyncio.to_thread(self._move_failed, item, kept)
        item = replace(item, path=kept)
        await self._notify_failed(item)

    async def _notify_failed(self, item: QueuedItem) -> None:
        state = item.state
        if not state.failed_notified:
            for failure in state.failures:
                await self._call_failed(item, failure)
            state = replace(state, failed_notified=True)
        if state.delivered_to and not state.delivered_notified:
            await self._call_delivered(replace(item, state=state))
            state = replace(state, delivered_notified=True)
        if state != item.state:
            await asyncio.to_thread(
                self._write_json, item.path.with_suffix(".json"), state.to_json()
            )

    async def _notify_recovered(self) -> None:
        """Run callbacks that a killed process did not get to run."""
        for path in sorted(self._sent.glob("*.eml")):
            item = await asyncio.to_thread(self._load, path, None)
            if item is not None:
                await self._call_delivered(item)
            await asyncio.to_thread(_unlink, path)
        for item in await asyncio.to_thread(self.failed):
            if not (
                item.state.failed_notified
                and (item.state.delivered_notified or not item.state.delivered_to)
            ):
                await self._notify_failed(item)

    async def _call_delivered(self, item: QueuedItem) -> None:
        if self._on_delivered is None:
            return
        try:
            await self._on_delivered(item)
        except Exception:
            log.exception("outbox: on_delivered failed for %s", item.id)

    async def _call_failed(self, item: QueuedItem, failure: DeliveryFailure) -> None:
        if self._on_failed is None:
            return
        try:
            await self._on_failed(item, failure)
        except Exception:
            log.exception("outbox: on_failed failed for %s", item.id)

    # -- files (blocking; run in a worker thread) ---------------------------------

    def _new_id(self) -> str:
        return f"{time.time_ns():019d}-{next(self._seq) % 1000000:06d}-{secrets.token_hex(3)}"

    @staticmethod
    def _header(item: OutboxItem, now: float, eight_bit: bool) -> bytes:
        header = {
            "mail_from": item.mail_from,
            "recipients": list(item.recipients),
            "meta": dict(item.meta),
            "created": now,
            "eight_bit": eight_bit,
        }
        line = json.dumps(header, ensure_ascii=True, separators=(",", ":"))
        return MAGIC + line.encode("ascii") + b"\n"

    def _ensure_dirs(self) -> None:
        for folder in (self._root, self._tmp, self._queue, self._sent, self._failed):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _write_new(self, prepared: Iterable[tuple[str, bytes, OutboxItem]]) -> None:
        self._ensure_dirs()
        written = []
        for item_id, header, item in prepared:
            tmp = self._tmp / f"{item_id}.eml"
            with _exclusive(tmp) as stream:
                stream.write(header)
                for piece in item.pieces:
                    stream.write(piece)
                stream.flush()
                os.fsync(stream.fileno())
            written.append((tmp, self._queue / tmp.name))
        moved: list[Path] = []
        try:
            for tmp, final in written:
                os.replace(tmp, final)
                moved.append(final)
            _fsync_dir(self._queue)
        except BaseException:
            # The caller answers 451: nothing of this batch may be sent later.
            for path in moved + [tmp for tmp, _final in written]:
                _unlink(path)
            raise

    def _write_json(self, path: Path, content: Mapping[str, Any]) -> None:
        tmp = self._tmp / f"{path.name}.{secrets.token_hex(4)}"
        with _exclusive(tmp) as stream:
            stream.write(json.dumps(content).encode("utf-8"))
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)

    def _move(self, source: Path, target: Path, *, remove_state: bool) -> None:
        os.replace(source, target)
        _fsync_dir(target.parent)
        _fsync_dir(source.parent)
        if remove_state:
            _unlink(source.with_suffix(".json"))

    def _move_failed(self, item: QueuedItem, kept: Path) -> None:
        self._write_json(kept.with_suffix(".json"), item.state.to_json())
        self._move(item.path, kept, remove_state=True)

    def _requeue(self, item: QueuedItem, state: ItemState, target: Path) -> None:
        self._write_json(target.with_suffix(".json"), state.to_json())
        self._move(item.path, target, remove_state=False)
        _unlink(item.path.with_suffix(".json"))

    def _recover(self) -> list[QueuedItem]:
        """Clean up after a crash and load the queue."""
        self._ensure_dirs()
        for stale in self._tmp.iterdir():
            _unlink(stale)
        items = []
        for path in sorted(self._queue.glob("*.eml")):
            item = self._load(path, path.with_suffix(".json"))
            if item is None:
                self._quarantine(path)
                continue
            items.append(item)
        for state in self._queue.glob("*.json"):
            if not state.with_suffix(".eml").exists():
                _unlink(state)
        return items

    def _load(self, path: Path, state_path: Path | None) -> QueuedItem | None:
        try:
            with path.open("rb") as stream:
                line = stream.readline(MAX_HEADER_BYTES)
                size = os.fstat(stream.fileno()).st_size - len(line)
            if not line.startswith(MAGIC) or not line.endswith(b"\n"):
                raise ValueError("no MailBeacon queue header")
            header = json.loads(line[len(MAGIC) :])
            state = ItemState()
            if state_path is not None and state_path.exists():
                state = ItemState.from_json(json.loads(state_path.read_bytes()))
            return QueuedItem(
                id=path.stem,
                mail_from=str(header["mail_from"]),
                recipients=tuple(header["recipients"]),
                meta=header.get("meta", {}),
                created=float(header["created"]),
                size=size,
                path=path,
                state=state,
                eight_bit=bool(header.get("eight_bit", True)),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.error("outbox: cannot read queued item %s: %s", path.name, error)
            return None

    def _quarantine(self, path: Path) -> None:
        """An unreadable item is kept aside, never deleted and never retried forever."""
        target = self._root / "damaged" / path.name
        target.parent.mkdir(mode=0o700, exist_ok=True)
        os.replace(path, target)
        log.error("outbox: moved unreadable item to %s", target)


def _group_failures(
    refused: Mapping[str, tuple[int, str]], now: float
) -> tuple[DeliveryFailure, ...]:
    groups: dict[tuple[int, str], list[str]] = {}
    for recipient, reply in refused.items():
        groups.setdefault(reply, []).append(recipient)
    return tuple(
        DeliveryFailure(tuple(rcpts), code, text, now) for (code, text), rcpts in groups.items()
    )


def _gave_up(temporary: Mapping[str, tuple[int, str]]) -> dict[str, tuple[int, str]]:
    return {r: (code, f"gave up retrying: {text}") for r, (code, text) in temporary.items()}


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[BinaryIO]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as stream:
        yield stream


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
