"""Blocking calls on a worker thread that a cancellation waits out.

``asyncio.to_thread`` hands a call to a thread; cancelling the task that awaits it
ends the await at once while the thread runs on. The server's watches and feed poll
a connection of their own that their ``stop`` closes right after cancelling them: a
SQLite connection closed under a query still running on another thread crashes the
interpreter (it did, in the test suite). :func:`in_thread` makes the cancelled task
end only once the call has returned, so whoever awaited the cancellation may close
what the call used.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def in_thread(call: Callable[..., T], /, *args: object) -> T:
    """``call(*args)`` on a worker thread; when cancelled, returns (by raising
    CancelledError) only after the call has finished."""
    running = asyncio.ensure_future(asyncio.to_thread(call, *args))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        # Its outcome no longer matters, only that the thread is done with it; a second
        # cancellation must not end the wait either (awaiting ``running`` itself would
        # pass it on to ``running`` and return at once).
        while not running.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({running})
        if not running.cancelled():
            running.exception()  # retrieved: a failure here is nobody's news any more
        raise
