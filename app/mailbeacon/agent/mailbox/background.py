"""The waiting and stopping that the mailbox's background loops (reply watcher, Sent
cleanup) share.

Stopping lets a loop finish the one message or email it is busy with, so a restart
does not do it again; a loop that is only waiting is cancelled at once. The
caller's own cancellation is never swallowed on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


async def wait_or_timeout(event: asyncio.Event, seconds: float | None) -> None:
    """Wait until ``event`` is set or ``seconds`` passed (None: no limit)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


async def stop_gracefully(
    task: asyncio.Task[None], busy: Callable[[], bool], grace_seconds: float
) -> None:
    """Cancel ``task``; while ``busy()``, first give it up to ``grace_seconds`` to finish."""
    if busy():
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), grace_seconds)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # our caller is being cancelled, not just the task
