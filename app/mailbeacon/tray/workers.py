"""Run blocking calls (store queries, network tests) off the UI thread.

``Worker.submit(fn, on_done, on_error)`` runs ``fn`` on the worker's own thread
pool. ``fn`` may be a plain blocking function or return an awaitable (an async
function's coroutine), which then runs on a fresh asyncio loop in that thread.
``on_done(result)`` or ``on_error(exception)`` is then called on the thread the
worker lives on (the UI thread), never on the pool's thread: Qt widgets may only
be touched there.

A job whose worker was cancelled or destroyed delivers nothing, so a window
closed while its query runs never sees a late answer.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, cast

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot
from shiboken6 import isValid

log = logging.getLogger(__name__)

T = TypeVar("T")

OnError = Callable[[BaseException], None]


class Job(QObject, Generic[T]):
    """One submitted call; delivers its outcome on the thread it was created on."""

    # Emitted on the pool's thread; queued onto the job's own (UI) thread.
    _outcome = Signal(bool, object)

    def __init__(
        self,
        worker: Worker,
        fn: Callable[[], T | Awaitable[T]],
        on_done: Callable[[T], None],
        on_error: OnError | None,
    ) -> None:
        super().__init__()
        self._worker = worker
        self._fn = fn
        self._on_done = on_done
        self._on_error = on_error
        self._cancelled = threading.Event()
        self._outcome.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    @property
    def cancelled(self) -> bool:
        """True once cancelled: the outcome will not be delivered."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Drop the outcome (the call itself runs to its end; it cannot be interrupted)."""
        self._cancelled.set()

    def run(self) -> None:
        """Call ``fn`` (on the pool's thread) and post its outcome."""
        if self.cancelled:
            self._outcome.emit(False, None)
            return
        try:
            result = self._fn()
            if inspect.isawaitable(result):
                result = asyncio.run(_await(result))
        except Exception as exc:  # handed to on_error on the UI thread, never raised into Qt
            log.info("background call failed: %s: %s", type(exc).__name__, exc)
            self._outcome.emit(False, exc)
            return
        self._outcome.emit(True, result)

    @Slot(bool, object)
    def _deliver(self, ok: bool, value: object) -> None:
        worker = self._worker
        if not isValid(worker):
            return
        try:
            if self.cancelled:
                return
            if ok:
                self._on_done(cast(T, value))
            elif isinstance(value, BaseException):
                if self._on_error is not None:
                    self._on_error(value)
                else:
                    log.error("background call failed and nobody handles it: %s", value)
        finally:
            # After the callback: a call it submits keeps the worker busy without a gap.
            worker._finished(self)


class _Runnable(QRunnable):
    def __init__(self, job: Job[Any]) -> None:
        super().__init__()
        self._job = job

    def run(self) -> None:
        self._job.run()


class Worker(QObject):
    """A small thread pool whose results come back on the UI thread.

    ``max_threads=1`` runs the calls one after the other, in submission order.
    ``busyChanged(bool)`` tells whether any call is still outstanding.
    """

    busyChanged = Signal(bool)

    def __init__(self, max_threads: int = 1, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._jobs: set[Job[Any]] = set()

    @property
    def busy(self) -> bool:
        """True while a submitted call has not delivered yet."""
        return bool(self._jobs)

    def submit(
        self,
        fn: Callable[[], T | Awaitable[T]],
        on_done: Callable[[T], None],
        on_error: OnError | None = None,
    ) -> Job[T]:
        """Run ``fn`` off the UI thread; ``on_done``/``on_error`` run on the UI thread."""
        job: Job[T] = Job(self, fn, on_done, on_error)
        self._jobs.add(job)  # keeps the job alive until it delivers
        if len(self._jobs) == 1:
            self.busyChanged.emit(True)
        self._pool.start(_Runnable(job))
        return job

    def cancel_all(self) -> None:
        """Drop the outcome of every outstanding call."""
        for job in list(self._jobs):
            job.cancel()

    def wait(self, timeout_ms: int = 5000) -> bool:
        """Block until every started call has returned (not delivered); True if in time."""
        return self._pool.waitForDone(timeout_ms)

    def close(self, timeout_ms: int = 5000) -> bool:
        """Cancel outstanding calls and wait for the running ones to return."""
        self.cancel_all()
        self._pool.clear()  # calls not started yet never start
        done = self._pool.waitForDone(timeout_ms)
        if not done:
            log.warning("a background call still runs after %d ms", timeout_ms)
        if self._jobs:
            self._jobs.clear()
            self.busyChanged.emit(False)
        return done

    def _finished(self, job: Job[Any]) -> None:
        self._jobs.discard(job)
        if not self._jobs:
            self.busyChanged.emit(False)


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable
