"""Compose windows opened from the tray menu, each kept alive until it closes.

A window without a parent is owned by nobody on the Python side: the opener
holds it, and lets it go (after its worker stopped) once it closed.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer

from mailbeacon.tray.views.compose.window import ComposeWindow


class ComposeOpener:
    """Opens compose windows and keeps each alive until it closes (for the tray menu)."""

    def __init__(self, make: Callable[[], ComposeWindow]) -> None:
        self._make = make
        self.windows: list[ComposeWindow] = []

    def __call__(self) -> ComposeWindow:
        """A new compose window, shown."""
        window = self._make()
        self.windows.append(window)
        window.closed.connect(lambda: QTimer.singleShot(0, lambda: self._forget(window)))
        window.show()
        window.raise_()
        window.activateWindow()
        return window

    def _forget(self, window: ComposeWindow) -> None:
        if window in self.windows:
            self.windows.remove(window)
            window.shutdown(0)
            window.deleteLater()
