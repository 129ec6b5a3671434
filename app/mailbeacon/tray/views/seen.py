"""When the rep has seen a window: what is new in it stops being new.

Merely opening a window is not seeing it (the bold rows and counts are there to be
seen first); looking at it and leaving it, or closing it, is. The activity feed
does the same in its own window class; ``SeenWatcher`` gives any other window that
rule as an event filter (contacts, a contact's record).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QWidget


class SeenWatcher(QObject):
    """Calls ``seen()`` (a method of the window) when the window is hidden, or loses
    focus after having had it.

    It holds the method weakly and not the window at all: a strong reference back
    would keep a closed, parentless window (a record) alive and on screen until the
    garbage collector ran.
    """

    def __init__(self, window: QWidget, seen: Callable[[], None]) -> None:
        super().__init__(window)
        self._seen = weakref.WeakMethod(seen)
        self._had_focus = False
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Watch the window's hide and activation changes; never consume them."""
        if isinstance(watched, QWidget) and watched.isWindow():
            kind = event.type()
            if kind == QEvent.Type.Hide:
                self._had_focus = False
                self._call()
            elif kind == QEvent.Type.ActivationChange:
                if watched.isActiveWindow():
                    self._had_focus = True
                elif self._had_focus:
                    self._had_focus = False
                    self._call()
        return False

    def _call(self) -> None:
        seen = self._seen()
        if seen is not None:
            seen()
