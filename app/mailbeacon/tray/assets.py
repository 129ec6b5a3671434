"""Finds the files under ``resources/`` from the source tree or an installed package.

``resources/`` sits at the repository top, next to ``app/``; an installed package
carries a copy in ``mailbeacon/data/resources`` (see ``resources/icons/README.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPalette, QPixmap

from mailbeacon.agent.notifications.model import ConnectionState

log = logging.getLogger(__name__)

_PACKAGE = Path(__file__).resolve().parents[1]  # .../mailbeacon

# Fallback dot colours when no icon file can be found at all.
_FALLBACK_COLOURS = {
    ConnectionState.CONNECTED: "#2f9e44",
    ConnectionState.CONNECTING: "#e8890c",
    ConnectionState.OFFLINE: "#d63939",
    ConnectionState.PAUSED: "#5f6b7a",
}


class PanelTheme(StrEnum):
    """The kind of panel the tray icon sits on."""

    LIGHT = "light"
    DARK = "dark"


def resource_dirs() -> tuple[Path, ...]:
    """Where resources are looked for, in order: the source tree, then the package copy."""
    return (_PACKAGE.parent.parent / "resources", _PACKAGE / "data" / "resources")


def find_resource(relative: str, dirs: Sequence[Path] | None = None) -> Path | None:
    """The first existing ``relative`` file under the resource folders, else None."""
    for folder in resource_dirs() if dirs is None else dirs:
        candidate = folder / relative
        if candidate.is_file():
            return candidate
    return None


def detect_panel_theme(app: QGuiApplication) -> PanelTheme:
    """Dark panels come with a dark colour scheme; fall back to the palette's lightness."""
    scheme = app.styleHints().colorScheme()
    if scheme == Qt.ColorScheme.Dark:
        return PanelTheme.DARK
    if scheme == Qt.ColorScheme.Light:
        return PanelTheme.LIGHT
    window = app.palette().color(QPalette.ColorRole.Window)
    return PanelTheme.DARK if window.lightnessF() < 0.5 else PanelTheme.LIGHT


class IconSet:
    """The tray and app icons for one panel theme, loaded once and cached."""

    def __init__(self, theme: PanelTheme, dirs: Sequence[Path] | None = None) -> None:
        self.theme = theme
        self._dirs = tuple(resource_dirs() if dirs is None else dirs)
        self._cache: dict[str, QIcon] = {}

    @staticmethod
    def tray_name(state: ConnectionState, theme: PanelTheme) -> str:
        """File stem of the tray icon for ``state`` on a ``theme`` panel."""
        return f"tray-{state.value}-{theme.value}"

    def tray(self, state: ConnectionState) -> QIcon:
        """The tray icon showing ``state``."""
        name = self.tray_name(state, self.theme)
        return self._load(name, _FALLBACK_COLOURS[state])

    def app(self) -> QIcon:
        """The application icon."""
        return self._load("app", "#1c7ed6")

    def app_icon_path(self) -> Path | None:
        """The application icon's file, for notification daemons that take a path."""
        return find_resource("icons/app.svg", self._dirs)

    def _load(self, name: str, fallback_colour: str) -> QIcon:
        icon = self._cache.get(name)
        if icon is None:
            path = find_resource(f"icons/{name}.svg", self._dirs)
            if path is None:
                log.warning("icon %s.svg not found in %s; drawing a plain dot", name, self._dirs)
                icon = _dot_icon(fallback_colour)
            else:
                icon = QIcon(str(path))
            self._cache[name] = icon
        return icon


def _dot_icon(colour: str) -> QIcon:
    pixmap = QPixmap(24, 24)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(colour))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(3, 3, 18, 18)
    painter.end()
    return QIcon(pixmap)
