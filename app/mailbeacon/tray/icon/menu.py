"""The tray icon's menu. Windows built elsewhere come in as openers; an absent opener
means no menu item, so the menu never offers something that does nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QWidget

from mailbeacon.core.language import ENGLISH, Language, mark

Opener = Callable[[], None]
# Each item's text by key (English source; "&" marks the keyboard shortcut, which a
# translation picks for itself).
TEXTS = {
    "compose": mark("&Compose…"),
    "activity": mark("&Activity"),
    "contacts": mark("C&ontacts"),
    "reports": mark("&Reports"),
    "scheduled": mark("Sc&heduled"),
    "sequences": mark("Se&quences"),
    "pause_hour": mark("For 1 &hour"),
    "pause_tomorrow": mark("Until &tomorrow"),
    "resume": mark("&Resume"),
    "setup": mark("&Mail client setup…"),
    "settings": mark("&Settings…"),
    "quit": mark("&Quit MailBeacon"),
}


@dataclass(frozen=True, slots=True)
class Windows:
    """Openers of the app's windows (each shows or raises its window)."""

    compose: Opener | None = None
    activity: Opener | None = None
    contacts: Opener | None = None
    reports: Opener | None = None
    settings: Opener | None = None
    scheduled: Opener | None = None
    sequences: Opener | None = None


class TrayMenu(QMenu):
    """Compose, Activity, Contacts, Reports, Pause notifications, Mail client setup,
    Settings, Quit. ``actions_by_key`` names each item for wiring and tests."""

    pauseForHourRequested = Signal()
    pauseUntilTomorrowRequested = Signal()
    resumeRequested = Signal()
    setupRequested = Signal()
    quitRequested = Signal()

    def __init__(
        self, windows: Windows, parent: QWidget | None = None, tr: Language = ENGLISH
    ) -> None:
        super().__init__(parent)
        self._tr = tr
        self._paused_until = ""
        self.actions_by_key: dict[str, QAction] = {}
        # The agent's worst state first, in plain words; informative, not clickable.
        self.status_action = self.addAction(tr.t("Starting…"))
        self.status_action.setEnabled(False)
        self.actions_by_key["status"] = self.status_action
        self.addSeparator()
        self._add_opener("compose", windows.compose)
        self._add_opener("activity", windows.activity)
        self._add_opener("contacts", windows.contacts)
        self._add_opener("reports", windows.reports)
        self._add_opener("scheduled", windows.scheduled)
        self._add_opener("sequences", windows.sequences)
        if len(self.actions_by_key) > 1:
            self.addSeparator()

        self.pause_menu = self.addMenu("")
        self._add("pause_hour", self.pauseForHourRequested.emit, self.pause_menu)
        self._add("pause_tomorrow", self.pauseUntilTomorrowRequested.emit, self.pause_menu)
        self.pause_menu.addSeparator()
        self._add("resume", self.resumeRequested.emit, self.pause_menu)
        self.set_paused("")

        self._add("setup", self.setupRequested.emit)
        self.set_setup_available(False)
        self._add_opener("settings", windows.settings)
        self.addSeparator()
        self._add("quit", self.quitRequested.emit)

    def set_language(self, tr: Language) -> None:
        """Word every item in ``tr`` (the rep changed the language)."""
        self._tr = tr
        for key, action in self.actions_by_key.items():
            if key in TEXTS:
                action.setText(tr.t(TEXTS[key]))
        self.set_paused(self._paused_until)

    def set_paused(self, until: str) -> None:
        """Show the pause's end (e.g. ``15:30``), or that nothing is paused (empty)."""
        self._paused_until = until
        if until:
            self.pause_menu.setTitle(self._tr.t("&Paused until {time}", time=until))
        else:
            self.pause_menu.setTitle(self._tr.t("&Pause notifications"))
        self.actions_by_key["resume"].setEnabled(bool(until))

    def set_status(self, line: str, others: tuple[str, ...] = ()) -> None:
        """The status line: the worst state; the others in its tooltip."""
        # "&" would turn the next letter into a shortcut: text from a server reply stays text.
        self.status_action.setText(line.replace("&", "&&"))
        self.status_action.setToolTip("\n".join((line, *others)))

    def set_setup_available(self, available: bool) -> None:
        """Mail client setup needs the relay's address, known once the agent runs."""
        self.actions_by_key["setup"].setEnabled(available)

    def _add_opener(self, key: str, opener: Opener | None) -> None:
        if opener is not None:
            self._add(key, opener)

    def _add(self, key: str, slot: Opener, menu: QMenu | None = None) -> None:
        action = (menu or self).addAction(self._tr.t(TEXTS[key]))
        action.triggered.connect(slot)
        self.actions_by_key[key] = action
