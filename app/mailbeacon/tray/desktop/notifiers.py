"""Desktop notifications behind one small protocol, and the choice of backend at start.

Backends, in order of preference: the freedesktop notification service over D-Bus
(``freedesktop.py``), Qt's tray balloon, the in-app toast (``toast.py``). Titles and
bodies are plain text everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QSystemTrayIcon

from mailbeacon.tray.desktop.freedesktop import FreedesktopNotifier
from mailbeacon.tray.desktop.toast import ToastNotifier

log = logging.getLogger(__name__)


class DesktopNotifier(Protocol):
    """Shows one notification; ``on_click`` runs on the UI thread when the rep clicks it."""

    kind: str

    def show(self, title: str, body: str, on_click: Callable[[], None] | None) -> None:
        """Show a notification (plain-text title and body); never blocks the UI thread."""

    def close(self) -> None:
        """Release what the backend holds (connections, threads, widgets)."""


class BalloonNotifier:
    """Qt's own tray balloon (``QSystemTrayIcon.showMessage``); plain text in Qt."""

    kind = "balloon"

    def __init__(self, tray: QSystemTrayIcon, icon: QIcon, msecs: int = 8000) -> None:
        self._tray = tray
        self._icon = icon
        self._msecs = msecs
        self._on_click: Callable[[], None] | None = None
        tray.messageClicked.connect(self._clicked)

    def show(self, title: str, body: str, on_click: Callable[[], None] | None) -> None:
        """Show the balloon; only the newest balloon can be clicked."""
        self._on_click = on_click
        self._tray.showMessage(title, body, self._icon, self._msecs)

    def _clicked(self) -> None:
        callback, self._on_click = self._on_click, None
        if callback is not None:
            callback()

    def close(self) -> None:
        """Stop listening to the tray."""
        self._tray.messageClicked.disconnect(self._clicked)


def choose_notifier(
    tray: QSystemTrayIcon,
    app_icon: QIcon,
    app_icon_path: Path | None,
    *,
    freedesktop: Callable[[DesktopNotifier], DesktopNotifier | None] | None = None,
    balloon_possible: Callable[[], bool] | None = None,
) -> DesktopNotifier:
    """Freedesktop if the session bus offers the service, else the balloon, else the toast.

    The local backend (balloon or toast) also catches what a failing service drops.
    """
    local: DesktopNotifier
    if (balloon_possible or _balloon_possible)():
        local = BalloonNotifier(tray, app_icon)
    else:
        local = ToastNotifier(app_icon)
    chosen: DesktopNotifier | None
    if freedesktop is None:
        chosen = FreedesktopNotifier.open(app_icon_path, fallback=local)
    else:
        chosen = freedesktop(local)
    if chosen is None:
        chosen = local
    log.info("desktop notifications: %s", chosen.kind)
    return chosen


def _balloon_possible() -> bool:
    return QSystemTrayIcon.isSystemTrayAvailable() and QSystemTrayIcon.supportsMessages()
