"""What the tray's menu and notifications open for one profile, built from the windows
that exist. Imported by ``commands.py`` only when the desktop app starts."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget

from mailbeacon.agent.notification import Notification
from mailbeacon.agent.records import RecordsStore
from mailbeacon.agent.secrets import Secret, SecretStore, SecretStoreUnavailable
from mailbeacon.core.profile import Profile
from mailbeacon.tray.activity_window import ActivityWindow
from mailbeacon.tray.menu import Windows

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


def profile_windows(profile: Profile) -> tuple[Windows, Callable[[Notification], None]]:
    """The menu's window openers and what a notification click opens.

    Only the Activity feed exists so far; a click on a notification opens it too.
    """

    def make_activity() -> QWidget:
        store = RecordsStore.for_profile(profile)
        window = ActivityWindow(store)
        window.destroyed.connect(store.close)
        return window

    activity = LazyWindow("the activity feed", make_activity)
    return Windows(activity=activity.open), lambda _notification: activity.open()


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
