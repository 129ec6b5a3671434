"""The desktop shell: tray icon, menu, notifications, pause, first-run dialog, and ``main``.

It holds no business rules: the agent decides what to notify; this shows it.
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from mailbeacon.agent.notifications.model import AgentStatus, ConnectionState, Notification
from mailbeacon.core.language import ENGLISH, Language, in_language, said
from mailbeacon.core.profile import Profile
from mailbeacon.tray.assets import IconSet, detect_panel_theme
from mailbeacon.tray.desktop.notifiers import DesktopNotifier, choose_notifier
from mailbeacon.tray.desktop.quit_signals import quit_on_signals
from mailbeacon.tray.desktop.single_instance import SingleInstance, instance_name
from mailbeacon.tray.icon.menu import TrayMenu, Windows
from mailbeacon.tray.icon.pause import HOUR, PauseState
from mailbeacon.tray.icon.tray_icon import TrayIcon
from mailbeacon.tray.language import QtLanguage
from mailbeacon.tray.threads.bridge import AgentBridge, AgentMain, AgentThread
from mailbeacon.tray.threads.gc_guard import UiThreadCollector
from mailbeacon.tray.views.first_run import FirstRunDialog, MailClientSettings

if TYPE_CHECKING:
    from mailbeacon.tray.views.account.flow import AccountFlow
    from mailbeacon.tray.views.reach import ReachStep

    AccountFlowFactory = Callable[[MailClientSettings], AccountFlow]
    ReachStepFactory = Callable[[], ReachStep]

log = logging.getLogger(__name__)

OpenRecord = Callable[[Notification], None]
# The buttons a notification offers besides a click (a reminder's Open record, Write
# follow-up, Snooze): (label, what it does), on the UI thread.
NotificationActions = Callable[[Notification], list[tuple[str, Callable[[], None]]]]
PasswordSource = Callable[[], str | None]

_MAX_TIMER_MS = 2**31 - 1


class TrayApp(QObject):
    """Wires the tray icon, its menu, the notifier and the pause together."""

    quitRequested = Signal()
    # New settings were saved: the agent restarts to take them up.
    restartAgentRequested = Signal()
    # The rep chose another language (Qt's own words follow it).
    languageChanged = Signal(object)

    def __init__(
        self,
        icons: IconSet,
        *,
        windows: Windows | None = None,
        open_record: OpenRecord | None = None,
        relay_password: PasswordSource | None = None,
        first_run: bool = False,
        first_run_shown: Callable[[], None] | None = None,
        pause: PauseState | None = None,
        platform: str | None = None,
        parent: QObject | None = None,
        account_flow: AccountFlowFactory | None = None,
        reach_step: ReachStepFactory | None = None,
        language: Language = ENGLISH,
    ) -> None:
        super().__init__(parent)
        self.icons = icons
        self.language = language
        self.windows = windows or Windows()
        self.menu = TrayMenu(self.windows, tr=language)
        self.tray = TrayIcon(icons, self.menu, platform, self, tr=language)
        self.pause = pause or PauseState()
        self.notifier: DesktopNotifier | None = None
        self.setup_dialog: FirstRunDialog | None = None
        self.quitting = False
        self._open_record = open_record
        # Set once the windows exist (commands.py); backends without buttons ignore it.
        self.notification_actions: NotificationActions | None = None
        self._relay_password = relay_password or (lambda: None)
        self._first_run = first_run
        self._first_run_shown = first_run_shown
        self._account_flow = account_flow
        self._reach_step = reach_step
        self._held: list[tuple[str, str, Callable[[], None] | None]] = []
        self._pause_timer = QTimer(self)
        self._pause_timer.setSingleShot(True)
        self._pause_timer.timeout.connect(self.refresh_pause)

        self.menu.pauseForHourRequested.connect(self.pause_for_hour)
        self.menu.pauseUntilTomorrowRequested.connect(self.pause_until_tomorrow)
        self.menu.resumeRequested.connect(self.resume)
        self.menu.setupRequested.connect(self.show_setup)
        self.menu.quitRequested.connect(self.quitRequested)
        self.tray.activated.connect(self._activated)

    # What the agent says -------------------------------------------------------------

    def set_notifier(self, notifier: DesktopNotifier) -> None:
        """The backend to show notifications with; shows any that came before it."""
        self.notifier = notifier
        held, self._held = self._held, []
        for title, body, on_click in held:
            notifier.show(title, body, on_click)

    def on_notification(self, notification: Notification) -> None:
        """Show ``notification`` unless notifications are paused."""
        self.tray.note_event(_event_line(notification))
        if self.pause.is_paused():
            log.info("notification %s held back: paused", notification.event)
            return
        on_click = (
            functools.partial(self._open_record, notification)
            if self._open_record is not None
            else None
        )
        actions = self.notification_actions(notification) if self.notification_actions else []
        with_buttons = getattr(self.notifier, "show_with_actions", None)
        if actions and with_buttons is not None:
            with_buttons(notification.title, notification.body, on_click, actions)
            return
        self._notify(notification.title, notification.body, on_click)

    def notify(self, title: str, body: str) -> None:
        """A short notification about something the rep just did (a send): shown even
        while paused, which holds back tracking news only."""
        self._notify(title, body, None)

    def on_status(self, status: AgentStatus) -> None:
        """The agent's state: icon, tooltip, and the first-run dialog once the relay runs."""
        self.tray.show_status(status)
        has_relay = status.relay_port > 0
        self.menu.set_setup_available(has_relay)
        if self._first_run and has_relay:
            self._first_run = False
            self.show_setup(account_first=True)
            if self._first_run_shown is not None:
                self._first_run_shown()

    def set_language(self, language: Language) -> None:
        """The rep chose another language: the menu, the tooltip and the dialogs from
        now on speak it (no restart)."""
        self.language = language
        self.menu.set_language(language)
        self.tray.set_language(language)
        self.languageChanged.emit(language)

    def on_agent_exited(self, error: BaseException | None) -> None:
        """The agent ended; unless we are quitting, the rep must know tracking stopped."""
        if self.quitting:
            return
        tr = self.language
        # The agent's own words (a phrase) in the rep's language; others as they came.
        said_by = (said(error) or type(error).__name__) if error is not None else None
        reason = in_language(said_by, tr) if said_by is not None else tr.t("it stopped")
        detail = tr.t("MailBeacon is not tracking: {reason}", reason=reason)
        self.tray.show_status(AgentStatus(ConnectionState.OFFLINE, detail=detail))
        self._notify(tr.t("MailBeacon stopped tracking"), detail, None)

    # Pause ---------------------------------------------------------------------------

    def pause_for_hour(self) -> None:
        """Pause notifications for one hour."""
        self.pause.pause_for(HOUR)
        self.refresh_pause()

    def pause_until_tomorrow(self) -> None:
        """Pause notifications until tomorrow morning."""
        self.pause.pause_until_tomorrow()
        self.refresh_pause()

    def resume(self) -> None:
        """Notify again."""
        self.pause.resume()
        self.refresh_pause()

    def refresh_pause(self) -> None:
        """Show the pause state and wake up when it ends (one timer, no polling)."""
        until = self.pause.describe_end()
        self.tray.set_paused(until)
        self.menu.set_paused(until)
        if until:
            self._pause_timer.start(min(_MAX_TIMER_MS, math.ceil(self.pause.seconds_left() * 1000)))
        else:
            self._pause_timer.stop()

    # Windows -------------------------------------------------------------------------

    def show_setup(self, account_first: bool = False) -> None:
        """Show what to type into the mail client (needs the relay's address); on first
        run the mail-account flow comes first (docs/rep-guide.md, "Your mail account")."""
        status = self.tray.status
        if status.relay_port <= 0:
            return
        if self.setup_dialog is not None and self.setup_dialog.isVisible():
            self.setup_dialog.raise_()
            self.setup_dialog.activateWindow()
            return
        if self.setup_dialog is not None:
            self.setup_dialog.deleteLater()
        settings = MailClientSettings.from_status(status, self._relay_password())
        account = self._account_flow if account_first else None
        reach = self._reach_step if account_first else None
        self.setup_dialog = FirstRunDialog(
            settings, account=account, reach=reach, tr=self.language
        )
        self.setup_dialog.setWindowIcon(self.tray.icon())
        self.setup_dialog.show()
        self.setup_dialog.raise_()
        self.setup_dialog.activateWindow()

    def show_requested(self) -> None:
        """Another launch on this profile asked us to show ourselves."""
        if self.windows.activity is not None:
            self.windows.activity()
        elif self.tray.status.relay_port > 0:
            self.show_setup()
        else:
            self._notify(
                self.language.t("MailBeacon is already running"), self.tray.tooltip_text(), None
            )

    def follow_color_scheme(self, _scheme: Qt.ColorScheme) -> None:
        """The desktop switched between light and dark: icons for the new panel."""
        app = QApplication.instance()
        if isinstance(app, QApplication):
            self.icons = IconSet(detect_panel_theme(app))
            self.tray.set_icons(self.icons)

    def close(self) -> None:
        """Hide the icon and let go of the notifier and dialogs."""
        self._pause_timer.stop()
        self.tray.hide()
        if self.setup_dialog is not None:
            self.setup_dialog.close()
        if self.notifier is not None:
            self.notifier.close()
            self.notifier = None

    def _notify(self, title: str, body: str, on_click: Callable[[], None] | None) -> None:
        if self.notifier is None:
            self._held.append((title, body, on_click))
        else:
            self.notifier.show(title, body, on_click)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason != QSystemTrayIcon.ActivationReason.Trigger:
            return
        if self.windows.activity is not None:
            self.windows.activity()
        else:
            self.menu.popup(QCursor.pos())


def _event_line(notification: Notification) -> str:
    """``title (HH:MM)`` in local time, for the tooltip."""
    try:
        at = datetime.fromisoformat(notification.at).astimezone()
    except ValueError:
        return notification.title
    return f"{notification.title} ({at:%H:%M})"


class AgentSupervisor:
    """The agent's thread: started with the app, restarted when settings change."""

    def __init__(self, agent_main: AgentMain, bridge: AgentBridge, timeout: float) -> None:
        self._main = agent_main
        self._bridge = bridge
        self._timeout = timeout
        self._thread: AgentThread | None = None
        self._stopping: list[bool] = [False]

    def start(self) -> None:
        """Start the agent on its own thread and loop."""
        stopping = self._stopping = [False]

        def exited(error: BaseException | None) -> None:
            # An exit we asked for (quit, restart) is not news to the rep.
            if not stopping[0]:
                self._bridge.agent_exited(error)

        self._thread = AgentThread(self._main, self._bridge, on_exit=exited)
        self._thread.start()

    def stop(self) -> bool:
        """Stop it (bounded by the timeout); False if it did not stop in time."""
        self._stopping[0] = True
        if self._thread is None or self._thread.stop(self._timeout):
            return True
        log.error("the agent did not stop within %.1f s", self._timeout)
        return False

    def restart(self) -> None:
        """Stop and start again, taking up new settings."""
        self.stop()
        self.start()


def main(
    args: argparse.Namespace,
    profile: Profile,
    agent_main: AgentMain,
    *,
    open_record: OpenRecord | None = None,
    windows: Windows | None = None,
    relay_password: PasswordSource | None = None,
    first_run: bool = False,
    first_run_shown: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.time,
    notifier_factory: Callable[[TrayApp], DesktopNotifier] | None = None,
    ready: Callable[[TrayApp], None] | None = None,
    stop_timeout: float = 3.0,
    pause: PauseState | None = None,
    account_flow: AccountFlowFactory | None = None,
    on_event: Callable[[Notification], None] | None = None,
    reach_step: ReachStepFactory | None = None,
    language: Language = ENGLISH,
) -> int:
    """Run the desktop app for ``profile`` until Quit; the agent is ``agent_main``.

    ``agent_main(listener, stop_event)`` runs on its own thread and loop; a second
    launch on the same profile asks the running one to show itself and returns 0.
    ``open_record(notification)`` runs when the rep clicks a notification; ``windows``
    holds the openers of the other windows. With ``first_run`` the mail-client dialog
    shows once the relay runs, then ``first_run_shown()`` records that. ``ready(tray_app)``
    runs once the icon is up (tests, benchmarks). Returns the process exit code.
    """
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("MailBeacon")
    app.setDesktopFileName("mailbeacon")
    app.setQuitOnLastWindowClosed(False)
    qt_language = QtLanguage(app, language)

    collector = UiThreadCollector()
    guard = SingleInstance(instance_name(profile))
    if not guard.acquire():
        print("MailBeacon is already running for this profile; showing it.", file=sys.stderr)
        collector.stop()
        return 0

    icons = IconSet(detect_panel_theme(app))
    app.setWindowIcon(icons.app())
    if relay_password is None:
        given: str | None = getattr(args, "relay_password", None)
        relay_password = lambda: given  # noqa: E731 - the password the command line gave
    tray_app = TrayApp(
        icons,
        windows=windows,
        open_record=open_record,
        relay_password=relay_password,
        first_run=first_run,
        first_run_shown=first_run_shown,
        pause=pause or PauseState(clock),
        account_flow=account_flow,
        reach_step=reach_step,
        language=language,
    )
    tray_app.languageChanged.connect(qt_language.apply)
    tray_app.tray.show()

    bridge = AgentBridge(tray_app)
    bridge.notificationReceived.connect(tray_app.on_notification)
    if on_event is not None:  # open windows show what just arrived (live feed)
        bridge.notificationReceived.connect(on_event)
    bridge.statusChanged.connect(tray_app.on_status)
    bridge.agentExited.connect(tray_app.on_agent_exited)
    agent = AgentSupervisor(agent_main, bridge, stop_timeout)
    agent.start()
    tray_app.restartAgentRequested.connect(agent.restart)

    tray_app.set_notifier((notifier_factory or _default_notifier)(tray_app))
    if not QSystemTrayIcon.isSystemTrayAvailable():
        log.warning("no system tray on this desktop; notifications still show")
    app.styleHints().colorSchemeChanged.connect(tray_app.follow_color_scheme)
    guard.showRequested.connect(tray_app.show_requested)
    tray_app.quitRequested.connect(app.quit)
    restore_signals = quit_on_signals(app)

    if ready is not None:
        ready(tray_app)
    try:
        code = app.exec()
    finally:
        tray_app.quitting = True
        agent.stop()
        tray_app.close()
        guard.close()
        restore_signals()
        bridge.disconnect(tray_app)
        tray_app.deleteLater()
        collector.stop()
    return code


def _default_notifier(tray_app: TrayApp) -> DesktopNotifier:
    icons = tray_app.icons
    return choose_notifier(tray_app.tray, icons.app(), icons.app_icon_path())
