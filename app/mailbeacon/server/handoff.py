"""One thread for the writer's blocking calls, handed work through a simple queue.

The recorder runs COMMIT (its fsync) and waits for SQLite's write lock off the event
loop. An executor did that through concurrent futures, a semaphore and a chained
asyncio future per call; on the pixel path that hand-off, once per group commit,
cost more than the group's inserts (docs/performance.md). Here a call is a tuple on
a ``queue.SimpleQueue`` (C, one lock) and its result comes back with one
``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_Work = tuple[Callable[[], Any], asyncio.Future[Any]] | None


class BlockingThread:
    """Runs blocking calls one at a time, in order, on its own thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str) -> None:
        self._loop = loop
        self._queue: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def call(self, call: Callable[[], T]) -> asyncio.Future[T]:
        """``call()`` on the thread; the future is resolved on the loop."""
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put((call, future))
        return future

    def stop(self) -> None:
        """Finish the calls already handed over, then end the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (work := self._queue.get()) is not None:
            call, future = work
            try:
                result = call()
            except BaseException as exc:
                self._loop.call_soon_threadsafe(_fail, future, exc)
            else:
                self._loop.call_soon_threadsafe(_succeed, future, result)


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
