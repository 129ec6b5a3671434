"""The tray icon: shows the agent's state, the last event and whether notifications pause.

The agent decides what is worst (``agent/status.py``: sending not set up or failing,
tracking unreachable, stream offline, paused); the icon's colour and the first line
of the tooltip and of the menu show that headline, never a green "Connected" while
mail cannot leave.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QObject
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from mailbeacon.agent.notifications.model import AgentStatus, ConnectionState
from mailbeacon.agent.status import Level
from mailbeacon.core.language import ENGLISH, Language, in_language, mark
from mailbeacon.tray.assets import IconSet
from mailbeacon.tray.icon.menu import TrayMenu

STATE_LABELS = {
    ConnectionState.CONNECTED: mark("Connected"),
    ConnectionState.CONNECTING: mark("Connecting…"),
    ConnectionState.OFFLINE: mark("Offline"),
    ConnectionState.PAUSED: mark("Paused"),
}

# Platforms whose tray tooltips are native plain text; elsewhere Qt guesses rich text.
_PLAIN_TOOLTIP_PLATFORMS = frozenset({"windows", "cocoa"})


# The agent's level → the icon: red for mail that cannot leave, amber for opens that
# are not seen, grey for a pause. (The icon files are named after connection states.)
LEVEL_ICONS = {
    Level.ERROR: ConnectionState.OFFLINE,
    Level.WARNING: ConnectionState.CONNECTING,
    Level.PAUSED: ConnectionState.PAUSED,
}


def shown_state(connection: ConnectionState, paused: bool) -> ConnectionState:
    """The state the icon shows: being offline matters most, then a pause."""
    if connection == ConnectionState.OFFLINE:
        return ConnectionState.OFFLINE
    if paused:
        return ConnectionState.PAUSED
    return connection


def shown_for(status: AgentStatus, paused: bool) -> ConnectionState:
    """The icon for ``status``: the agent's worst state when it sent one."""
    if status.report is None or status.connection == ConnectionState.OFFLINE:
        return shown_state(status.connection, paused)
    level = status.report.headline().level
    if level == Level.OK and paused:
        return ConnectionState.PAUSED
    return LEVEL_ICONS.get(level, ConnectionState.CONNECTED)


def status_lines(
    status: AgentStatus, tr: Language = ENGLISH
) -> tuple[str, tuple[str, ...]]:
    """The status line (worst first) and the other problems, in plain words."""
    if status.report is None:
        return tr.t(STATE_LABELS[status.connection]), ()
    head = status.report.headline(tr)
    return head.text, head.others


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
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(parent)
        self._tr = tr
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
        """The agent's new state (the menu's status line follows it)."""
        self.status = status
        self._refresh()
        menu = self.contextMenu()
        if isinstance(menu, TrayMenu):
            menu.set_status(*status_lines(status, self._tr))

    def set_language(self, tr: Language) -> None:
        """Word the tooltip and the status line in ``tr``."""
        self._tr = tr
        self.show_status(self.status)

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
        tr = self._tr
        label, others = status_lines(self.status, tr)
        lines = [tr.t("MailBeacon — {state}", state=label)]
        lines.extend(others)
        # The agent words these once, in English (status file, log) and as phrases the
        # tray says again in the rep's language.
        if self.status.detail:
            lines.append(in_language(self.status.detail, tr))
        lines.extend(in_language(problem, tr) for problem in self.status.problems[:3])
        if self.paused_until:
            lines.append(tr.t("Notifications paused until {time}", time=self.paused_until))
        if self.last_event:
            lines.append(tr.t("Last: {event}", event=self.last_event))
        return "\n".join(lines)

    def _refresh(self) -> None:
        self.state = shown_for(self.status, bool(self.paused_until))
        self.setIcon(self._icons.tray(self.state))
        self.setToolTip(tooltip_markup(self.tooltip_text(), self._platform))
