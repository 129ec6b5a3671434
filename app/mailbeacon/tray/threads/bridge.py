"""The agent runs on its own thread and asyncio loop; this hands its news to the UI thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

from mailbeacon.agent.notifications.model import AgentListener, AgentStatus, Notification

log = logging.getLogger(__name__)

AgentMain = Callable[[AgentListener, asyncio.Event], Coroutine[Any, Any, None]]
"""The agent's entry point: runs until ``stop_event`` is set, telling ``listener`` the news."""

_QUEUED = Qt.ConnectionType.QueuedConnection


class AgentBridge(QObject):
    """An ``AgentListener`` for the agent's thread whose signals fire on the UI thread.

    ``notificationReceived(Notification)``, ``statusChanged(AgentStatus)`` and
    ``agentExited(BaseException | None)`` are always emitted on the thread this object
    lives on (the UI thread), whichever thread called the listener method.
    """

    notificationReceived = Signal(object)
    statusChanged = Signal(object)
    agentExited = Signal(object)

    # Emitted from any thread; queued onto the bridge's own thread, then re-emitted.
    _notification = Signal(object)
    _status = Signal(object)
    _exited = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._notification.connect(self.notificationReceived, _QUEUED)
        self._status.connect(self.statusChanged, _QUEUED)
        self._exited.connect(self.agentExited, _QUEUED)

    def notification(self, notification: Notification) -> None:
        """AgentListener: a notification to show (any thread)."""
        self._notification.emit(notification)

    def status(self, status: AgentStatus) -> None:
        """AgentListener: the agent's state changed (any thread)."""
        self._status.emit(status)

    def agent_exited(self, error: BaseException | None) -> None:
        """The agent's coroutine ended, with the error that ended it if any (any thread)."""
        self._exited.emit(error)


class AgentThread:
    """Runs ``main(listener, stop_event)`` on a fresh asyncio loop in a daemon thread."""

    def __init__(
        self,
        main: AgentMain,
        listener: AgentListener,
        on_exit: Callable[[BaseException | None], None] | None = None,
        name: str = "mailbeacon-agent",
    ) -> None:
        self._main = main
        self._listener = listener
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop_requested = False
        self.error: BaseException | None = None
        # Daemon: an agent stuck past stop()'s bound must not keep the process alive.
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the agent; returns at once."""
        self._thread.start()

    def is_running(self) -> bool:
        """True while the agent's thread is alive."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 3.0) -> bool:
        """Ask the agent to stop, cancel it if it ignores that; True if it ended in time.

        Waits at most ``timeout`` seconds: 80% for a clean stop, the rest after
        cancelling the coroutine.
        """
        with self._lock:
            self._stop_requested = True
            loop, event, task = self._loop, self._stop_event, self._task
        if not self._thread.is_alive():
            return True
        if loop is not None and event is not None:
            self._call_soon(loop, event.set)
        self._thread.join(timeout * 0.8)
        if self._thread.is_alive() and loop is not None and task is not None:
            log.warning("agent did not stop within %.1f s; cancelling it", timeout * 0.8)
            self._call_soon(loop, task.cancel)
            self._thread.join(timeout * 0.2)
        if self._thread.is_alive():
            log.error("agent thread still running after %.1f s; leaving it behind", timeout)
            return False
        return True

    @staticmethod
    def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> None:
        # The loop may have closed between reading it and calling it: nothing left to do.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        error: BaseException | None = None
        try:
            loop.run_until_complete(self._guarded())
        except asyncio.CancelledError:
            pass  # stop() cancelled a coroutine that ignored its stop event
        except Exception as exc:  # the agent's failure is reported, never raised into Qt
            # Its message says what to fix; the traceback is for debugging only.
            log.error("the agent stopped: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
            error = exc
        finally:
            _close_loop(loop)
        self.error = error
        if self._on_exit is not None:
            self._on_exit(error)

    async def _guarded(self) -> None:
        stop_event = asyncio.Event()
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._stop_event = stop_event
            self._task = asyncio.current_task()
            if self._stop_requested:
                stop_event.set()
        await self._main(self._listener, stop_event)


def _close_loop(loop: asyncio.AbstractEventLoop, grace: float = 1.0) -> None:
    """Cancel what the agent left running and close the loop, each step bounded."""
    try:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=grace))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(asyncio.wait_for(loop.shutdown_default_executor(), grace))
    except (RuntimeError, TimeoutError):
        log.warning("the agent left work behind at shutdown", exc_info=True)
    finally:
        loop.close()
