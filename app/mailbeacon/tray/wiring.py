"""What the tray's menu and notifications open for one profile, built from the windows
that exist. Imported by ``commands.py`` only when the desktop app starts."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget

from mailbeacon.agent.notification import Notification
from mailbeacon.agent.records import RecordsStore
from mailbeacon.agent.secrets import Secret, SecretStore, SecretStoreUnavailable
from mailbeacon.agent.settings import Settings
from mailbeacon.core.profile import Profile
from mailbeacon.tray.activity_window import ActivityWindow
from mailbeacon.tray.menu import Windows
from mailbeacon.tray.settings_dialog import SettingsDialog

log = logging.getLogger(__name__)

FIRST_RUN_MARKER = "first-run-shown"


class LazyWindow:
    """A window made on first use, then shown and raised on each ``open``."""

    def __init__(self, title: str, factory: Callable[[], QWidget]) -> None:
        self._title = title
        self._factory = factory
        self.window: QWidget | None = None

    def open(self) -> None:
        """Show the window (making it first if needed)."""
        if self.window is None:
            try:
                self.window = self._factory()
            except Exception as exc:  # a window that cannot open says why, never crashes
                log.exception("cannot open %s", self._title)
                QMessageBox.warning(None, "MailBeacon", f"Cannot open {self._title}: {exc}")
                return
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()

    def forget(self) -> None:
        """Make the window afresh next time (a dialog reads current settings on open)."""
        if self.window is not None:
            self.window.deleteLater()
            self.window = None


def profile_windows(
    profile: Profile, restart_agent: Callable[[], None] = lambda: None
) -> tuple[Windows, Callable[[Notification], None]]:
    """The menu's window openers and what a notification click opens.

    ``restart_agent`` runs after the settings were saved, so the agent takes them up.
    """

    def make_activity() -> QWidget:
        store = RecordsStore.for_profile(profile)
        window = ActivityWindow(store)
        window.destroyed.connect(store.close)
        return window

    def make_settings() -> QWidget:
        settings = Settings.load_or_default(profile.config_file)

        def save(new: Settings) -> None:
            new.save(profile.config_file)
            restart_agent()

        secrets = SecretStore(profile.keyring_service, dict(os.environ))
        dialog = SettingsDialog(settings, secrets, save)
        dialog.finished.connect(lambda _code: settings_window.forget())
        return dialog

    activity = LazyWindow("the activity feed", make_activity)
    settings_window = LazyWindow("the settings", make_settings)
    windows = Windows(activity=activity.open, settings=settings_window.open)
    return windows, lambda _notification: activity.open()


def relay_password_source(given: str | None, profile: Profile) -> Callable[[], str | None]:
    """The relay password for the mail-client dialog: the command line's, else the keyring's."""

    def read() -> str | None:
        if given:
            return given
        try:
            return SecretStore(profile.keyring_service).get(Secret.RELAY_PASSWORD)
        except SecretStoreUnavailable as exc:
            log.warning("relay password unavailable: %s", exc)
            return None

    return read


def first_run_state(profile: Profile) -> tuple[bool, Callable[[], None]]:
    """Whether the mail-client dialog is still to be shown for ``profile``, and what
    records that it was (an empty marker file in the profile's config folder)."""
    marker = profile.config_dir / FIRST_RUN_MARKER

    def shown() -> None:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except OSError as exc:
            log.warning("cannot record that the first-run dialog was shown: %s", exc)

    return not marker.exists(), shown
