"""The durable outbox: accepted mail waits here, on disk, until the upstream takes it.

Durability (docs/promises.md#no-mail-lost): :meth:`Outbox.enqueue` returns only once
the item is written, fsynced and renamed into ``queue/`` and the folder is
fsynced, so a relay that answers 250 after it can be killed at any moment.
Progress is recorded the same way: right after the upstream accepts a message
it is renamed to ``sent/`` (fsynced) before anything else happens. The folders and
their file operations are in :mod:`.outbox_spool`; the items, their state and the
transport protocol in :mod:`.outbox_items`.

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
import heapq
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from mailbeacon.agent.sending.outbox_items import (
    DeliveryError,
    DeliveryFailure,
    ItemState,
    OnDelivered,
    OnFailed,
    OutboxItem,
    QueuedItem,
    RetryPolicy,
    SendResult,
    Transport,
)
from mailbeacon.agent.sending.outbox_spool import (
    Spool,
    header_line,
    unlink_quietly,
)
from mailbeacon.core.language import Phrase, mark

__all__ = ["Outbox"]

log = logging.getLogger(__name__)


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
        self._spool = Spool(spool_dir)
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
        loaded = await asyncio.to_thread(self._spool.recover)
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
        await asyncio.to_thread(self._spool.check_space, size)

    async def enqueue_many(self, items: Sequence[OutboxItem]) -> list[str]:
        """Write several items (e.g. per-recipient copies) durably, in one fsync batch."""
        now = self._clock()
        # A scan of every byte: off the event loop for a large message.
        eight_bit = await asyncio.to_thread(lambda: [item.eight_bit for item in items])
        prepared = [
            (self._spool.new_id(), header_line(item, now, wide), item)
            for item, wide in zip(items, eight_bit, strict=True)
        ]
        await asyncio.to_thread(self._spool.write_new, prepared)
        ids = []
        for (item_id, _, item), wide in zip(prepared, eight_bit, strict=True):
            queued = QueuedItem(
                id=item_id,
                mail_from=item.mail_from,
                recipients=tuple(item.recipients),
                meta=dict(item.meta),
                created=now,
                size=item.size,
                path=self._spool.queue / f"{item_id}.eml",
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
        return self._spool.failed()

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
        path = self._spool.failed_dir / f"{item_id}.eml"
        item = await asyncio.to_thread(self._spool.load, path, path.with_suffix(".json"))
        if item is None:
            raise KeyError(item_id)
        state = ItemState(delivered_to=item.state.delivered_to)
        target = self._spool.queue / path.name
        await asyncio.to_thread(self._spool.requeue, item, state, target)
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
                Phrase(
                    mark("gave up after {days} days of temporary failures: {reply}"),
                    days=f"{days:g}",
                    reply=error.reply,
                ),
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
        path = self._spool.queue / f"{item.id}.json"
        await asyncio.to_thread(self._spool.write_state, path, state)
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
            sent = self._spool.sent / item.path.name
            await asyncio.to_thread(self._spool.move, item.path, sent, remove_state=True)
            item = replace(item, path=sent)
            log.info("outbox: %s delivered to %d recipient(s)", item.id, len(item.recipients))
            await self._call_delivered(item)
            await asyncio.to_thread(unlink_quietly, sent)
            return
        kept = self._spool.failed_dir / item.path.name
        await asyncio.to_thread(self._spool.move_failed, item, kept)
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
            await asyncio.to_thread(self._spool.write_state, item.path.with_suffix(".json"), state)

    async def _notify_recovered(self) -> None:
        """Run callbacks that a killed process did not get to run."""
        for path in sorted(self._spool.sent.glob("*.eml")):
            item = await asyncio.to_thread(self._spool.load, path, None)
            if item is not None:
                await self._call_delivered(item)
            await asyncio.to_thread(unlink_quietly, path)
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

