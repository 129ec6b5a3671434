"""SIGINT/SIGTERM end the Qt event loop cleanly (a logout, ``kill``, Ctrl+C).

Python runs signal handlers only when the interpreter gets control, which a Qt event
loop never gives it; the signal's wakeup byte on a socket wakes Qt instead (no polling).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterable

from PySide6.QtCore import QCoreApplication, QSocketNotifier

log = logging.getLogger(__name__)


def quit_on_signals(
    app: QCoreApplication, signums: Iterable[int] = (signal.SIGINT, signal.SIGTERM)
) -> Callable[[], None]:
    """Make ``signums`` quit ``app``; returns a function that undoes it."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    wanted = set(signums)
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    previous = {signum: signal.signal(signum, _ignore) for signum in wanted}
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read, app)

    def readable() -> None:
        try:
            data = reader.recv(64)
        except BlockingIOError:
            return
        if wanted & set(data):
            log.info("signal received; quitting")
            app.quit()

    notifier.activated.connect(readable)

    def restore() -> None:
        notifier.setEnabled(False)
        notifier.deleteLater()
        signal.set_wakeup_fd(previous_fd)
        for signum, handler in previous.items():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(signum, handler)
        reader.close()
        writer.close()

    return restore


def _ignore(_signum: int, _frame: object) -> None:
    """The Python-level handler: the wakeup byte already did the work."""
