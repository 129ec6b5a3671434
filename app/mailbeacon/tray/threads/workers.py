"""Run blocking calls (store queries, network tests) off the UI thread.

``Worker.submit(fn, on_done, on_error)`` runs ``fn`` on one of the worker's
threads. ``fn`` may be a plain blocking function or return an awaitable (an
async function's coroutine), which then runs on a fresh asyncio loop in that
thread. ``on_done(result)`` or ``on_error(exception)`` is then called on the
thread the worker lives on (the UI thread), never on the worker's thread: Qt
widgets may only be touched there.

Lifetimes: a cancelled call, or one whose worker was destroyed meanwhile,
delivers nothing, so a window closed while its query runs never sees a late
answer. The threads are plain daemon threads rather than a ``QThreadPool``:
deleting a window must never wait for a network test to time out (a pool's
destructor waits for its calls), and a call still running at exit must not hold
the process. The threads never touch a Qt object that may be gone: they post
results through the worker's signal only while a lock says it is alive. A thread
ends after ``idle_seconds`` without work, so an idle worker holds no thread.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, cast

import shiboken6
from PySide6.QtCore import QObject, Qt, Signal, Slot

log = logging.getLogger(__name__)

T = TypeVar("T")

OnError = Callable[[BaseException], None]


class Job(Generic[T]):
    """One submitted call."""

    def __init__(
        self,
        fn: Callable[[], T | Awaitable[T]],
        on_done: Callable[[T], None],
        on_error: OnError | None,
    ) -> None:
        self._fn: Callable[[], T | Awaitable[T]] | None = fn
        self._on_done: Callable[[T], None] | None = on_done
        self._on_error = on_error
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> bool:
        """True once cancelled: the outcome will not be delivered."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Drop the outcome (the call itself runs to its end; it cannot be interrupted)."""
        self._cancelled.set()

    def execute(self) -> tuple[bool, object]:
        """Call ``fn`` (on a worker thread): (True, result) or (False, exception)."""
        fn, self._fn = self._fn, None
        if self.cancelled or fn is None:
            return False, None
        try:
            result = fn()
            if inspect.isawaitable(result):
                result = asyncio.run(_await(result))
        except Exception as exc:  # handed to on_error on the UI thread, never raised into Qt
            log.info("background call failed: %s: %s", type(exc).__name__, exc)
            return False, exc
        return True, result

    def deliver(self, ok: bool, value: object) -> None:
        """Hand the outcome to the callbacks (on the UI thread), once."""
        # Forget the callbacks first. They belong to Qt objects, and a job can end up in
        # a reference cycle (an exception's traceback holds the frame that ran it); the
        # cyclic collector may run on any thread, and a Qt widget freed off the UI
        # thread crashes the process.
        on_done, on_error = self._on_done, self._on_error
        self._on_done = self._on_error = None
        if self.cancelled or on_done is None:
            return
        if ok:
            on_done(cast(T, value))
        elif isinstance(value, BaseException):
            if on_error is not None:
                on_error(value)
            else:
                log.error("background call failed and nobody handles it: %s", value)

    def release(self) -> None:
        """Forget the call and its callbacks (cancelled jobs never deliver)."""
        self._fn = None
        self._on_done = self._on_error = None


class _Shared:
    """What the threads share with the worker; never a Qt object."""

    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self.queue: queue.SimpleQueue[Job[Any]] = queue.SimpleQueue()
        self.lock = threading.Condition()
        self.alive = True  # False once the worker's QObject is being destroyed
        self.threads = 0  # alive
        self.waiting = 0  # alive and waiting for work
        self.unfinished = 0  # submitted and not yet returned

    def kill(self, *_: object) -> None:
        with self.lock:
            self.alive = False


class Worker(QObject):
    """Up to ``max_threads`` threads whose results come back on the UI thread.

    ``max_threads=1`` runs the calls one after the other, in submission order.
    ``busyChanged(bool)`` tells whether any call has not delivered yet. The
    threads hold no reference to the worker (a bound signal is a weak one).
    """

    busyChanged = Signal(bool)
    # Emitted on a worker thread; queued onto the worker's own (UI) thread.
    _outcome = Signal(object, bool, object)

    def __init__(
        self, max_threads: int = 1, parent: QObject | None = None, idle_seconds: float = 30.0
    ) -> None:
        super().__init__(parent)
        self._max_threads = max(1, max_threads)
        self._shared = _Shared(idle_seconds)
        self._jobs: set[Job[Any]] = set()  # submitted and not yet delivered
        self._outcome.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self.destroyed.connect(self._shared.kill)

    @property
    def busy(self) -> bool:
        """True while a submitted call has not delivered yet."""
        return bool(self._jobs)

    @property
    def thread_count(self) -> int:
        """Threads alive now (they retire after ``idle_seconds`` without work)."""
        with self._shared.lock:
            return self._shared.threads

    def submit(
        self,
        fn: Callable[[], T | Awaitable[T]],
        on_done: Callable[[T], None],
        on_error: OnError | None = None,
    ) -> Job[T]:
        """Run ``fn`` off the UI thread; ``on_done``/``on_error`` run on the UI thread."""
        job: Job[T] = Job(fn, on_done, on_error)
        self._jobs.add(job)
        if len(self._jobs) == 1:
            self.busyChanged.emit(True)
        shared = self._shared
        with shared.lock:
            shared.unfinished += 1
            # Queued under the lock: a thread about to retire sees it (see _serve).
            shared.queue.put(job)
            spawn = shared.waiting == 0 and shared.threads < self._max_threads
            if spawn:
                shared.threads += 1
        if spawn:
            # The thread holds the shared state and the bound signal, not the worker.
            threading.Thread(
                target=_serve,
                args=(shared, self._outcome),
                name="mailbeacon-worker",
                daemon=True,
            ).start()
        return job

    def cancel_all(self) -> None:
        """Drop the outcome of every outstanding call."""
        for job in list(self._jobs):
            job.cancel()
            job.release()

    def wait(self, timeout_ms: int = 5000) -> bool:
        """Block until every submitted call has returned (not delivered); True if in time."""
        shared = self._shared
        with shared.lock:
            return shared.lock.wait_for(lambda: shared.unfinished == 0, timeout_ms / 1000)

    def close(self, timeout_ms: int = 5000) -> bool:
        """Cancel outstanding calls and wait (bounded) for the running ones to return."""
        self.cancel_all()
        done = self.wait(timeout_ms)
        if not done:
            log.warning("a background call still runs after %d ms; left behind", timeout_ms)
        return done

    @Slot(object, bool, object)
    def _deliver(self, job: Job[Any], ok: bool, value: object) -> None:
        try:
            job.deliver(ok, value)
        finally:
            # After the callback: a call it submits keeps the worker busy without a gap.
            self._jobs.discard(job)
            # The callback may have closed the window that owns this worker.
            if not self._jobs and shiboken6.isValid(self):
                self.busyChanged.emit(False)


def _serve(shared: _Shared, outcome: Any) -> None:
    """A worker thread: run jobs until idle for ``idle_seconds``."""
    while True:
        with shared.lock:
            shared.waiting += 1
        try:
            job = shared.queue.get(timeout=shared.idle_seconds)
        except queue.Empty:
            with shared.lock:
                shared.waiting -= 1
                if shared.queue.empty():
                    shared.threads -= 1
                    return
            continue
        with shared.lock:
            shared.waiting -= 1
        ok, value = job.execute()
        with shared.lock:
            shared.unfinished -= 1
            shared.lock.notify_all()
            if shared.alive:  # under the lock: the worker cannot go away mid-emit
                try:
                    outcome.emit(job, ok, value)
                except RuntimeError:  # "Signal source has been deleted"
                    shared.alive = False
        # Drop our references now, not when the thread retires: the last reference to
        # the job (and the objects its callbacks belong to) should go on the UI thread.
        del job, value


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable
