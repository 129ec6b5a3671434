"""The tray icon: shows the agent's state, the last event and whether notifications pause."""

from __future__ import annotations

import html

from PySide6.QtCore import QObject
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from mailbeacon.agent.notifications.model import AgentStatus, ConnectionState
from mailbeacon.tray.assets import IconSet

STATE_LABELS = {
    ConnectionState.CONNECTED: "Connected",
    ConnectionState.CONNECTING: "Connecting…",
    ConnectionState.OFFLINE: "Offline",
    ConnectionState.PAUSED: "Paused",
}

# Platforms whose tray tooltips are native plain text; elsewhere Qt guesses rich text.
_PLAIN_TOOLTIP_PLATFORMS = frozenset({"windows", "cocoa"})


def shown_state(connection: ConnectionState, paused: bool) -> ConnectionState:
    """The state the icon shows: being offline matters most, then a pause."""
    if connection == ConnectionState.OFFLINE:
        return ConnectionState.OFFLINE
    if paused:
        return ConnectionState.PAUSED
    return connection


def tooltip_markup(text: str, platform: str) -> str:
    """``text`` for the tooltip so that it shows literally on ``platform``.

    Qt's own tooltips render anything that looks like HTML; an email subject such as
    ``<b>x</b>`` must not be (docs/promises.md, "Bad input"), so it goes in escaped
    inside explicit rich text.
    """
    if platform in _PLAIN_TOOLTIP_PLATFORMS:
        return text
    return "<qt>" + html.escape(text, quote=False).replace("\n", "<br>") + "</qt>"


class TrayIcon(QSystemTrayIcon):
    """The system tray icon; the icon and tooltip follow ``show_status``/``set_paused``."""

    def __init__(
        self,
        icons: IconSet,
        menu: QMenu | None = None,
        platform: str | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._icons = icons
        self._platform = QGuiApplication.platformName() if platform is None else platform
        self.status = AgentStatus(ConnectionState.CONNECTING)
        self.paused_until = ""
        self.last_event = ""
        self.state = ConnectionState.CONNECTING
        if menu is not None:
            self.setContextMenu(menu)
        self._refresh()

    def show_status(self, status: AgentStatus) -> None:
        """The agent's new state."""
        self.status = status
        self._refresh()

    def set_paused(self, until: str) -> None:
        """Notifications pause until ``until`` (e.g. ``15:30``); empty: not paused."""
        self.paused_until = until
        self._refresh()

    def note_event(self, text: str) -> None:
        """The last thing that happened, for the tooltip."""
        self.last_event = text
        self._refresh()

    def set_icons(self, icons: IconSet) -> None:
        """Another icon set (the panel's theme changed)."""
        self._icons = icons
        self._refresh()

    def tooltip_text(self) -> str:
        """The tooltip as plain text."""
        label = STATE_LABELS[self.status.connection]
        lines = [f"MailBeacon — {label}"]
        if self.status.detail:
            lines.append(self.status.detail)
        lines.extend(self.status.problems[:3])
        if self.paused_until:
            lines.append(f"Notifications paused until {self.paused_until}")
        if self.last_event:
            lines.append(f"Last: {self.last_event}")
        return "\n".join(lines)

    def _refresh(self) -> None:
        self.state = shown_state(self.status.connection, bool(self.paused_until))
        self.setIcon(self._icons.tray(self.state))
        self.setToolTip(tooltip_markup(self.tooltip_text(), self._platform))
