"""The first-run dialog: exactly what to type into a mail client's outgoing-server settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QClipboard, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.agent.notifications.model import AgentStatus
from mailbeacon.core.language import ENGLISH, Language, mark

if TYPE_CHECKING:  # the account flow shows these settings itself: no import cycle at run time
    from mailbeacon.tray.views.account.flow import AccountFlow
    from mailbeacon.tray.views.reach import ReachStep

SECURITY = mark("None (local only)")
AUTHENTICATION = mark("Normal password")
UNSET_HINT = mark("(not set — see Settings)")
# The labels as mail clients name them; the English one also names each box.
_LABELS = {
    "Server": mark("Server"),
    "Port": mark("Port"),
    "Connection security": mark("Connection security"),
    "Authentication": mark("Authentication"),
    "User name": mark("User name"),
    "Password": mark("Password"),
}


@dataclass(frozen=True, slots=True)
class MailClientSettings:
    """The outgoing (SMTP) server settings a mail client needs to send through the relay."""

    host: str
    port: int
    user: str
    password: str | None
    security: str = SECURITY
    authentication: str = AUTHENTICATION

    @classmethod
    def from_status(cls, status: AgentStatus, password: str | None) -> MailClientSettings:
        """The settings for the relay the agent reports."""
        return cls(status.relay_host, status.relay_port, status.relay_user, password)

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) in the order mail clients ask for them."""
        return [
            ("Server", self.host),
            ("Port", str(self.port)),
            ("Connection security", self.security),
            ("Authentication", self.authentication),
            ("User name", self.user),
            ("Password", self.password if self.password is not None else UNSET_HINT),
        ]

    def shown_rows(self, tr: Language = ENGLISH) -> list[tuple[str, str, str]]:
        """(English label, label as shown, value as shown) in ``tr``'s words."""
        return [
            (label, tr.t(_LABELS[label]), tr.t(value) if value in _WORDED else value)
            for label, value in self.rows()
        ]

    def as_text(self, tr: Language = ENGLISH) -> str:
        """The settings as lines of ``Label: value``, for the clipboard."""
        return "".join(
            tr.t("{label}: {value}", label=shown, value=value) + "\n"
            for _label, shown, value in self.shown_rows(tr)
        )


_WORDED = frozenset({SECURITY, AUTHENTICATION, UNSET_HINT})


def settings_form(
    settings: MailClientSettings, tr: Language = ENGLISH
) -> tuple[QFormLayout, dict[str, QLineEdit]]:
    """The settings as read-only boxes, one row each (the dialog's and the account flow's);
    the boxes are keyed by their English label."""
    form = QFormLayout()
    fields: dict[str, QLineEdit] = {}
    for label, shown, value in settings.shown_rows(tr):
        box = QLineEdit(value)
        box.setReadOnly(True)
        box.setMinimumWidth(260)
        box.setObjectName(label)
        form.addRow(tr.t("{label}:", label=shown), box)
        fields[label] = box
    return form, fields


class FirstRunDialog(QDialog):
    """Shows the relay settings with a Copy button; ``fields`` maps labels to their boxes.

    With ``account`` (a factory of the account flow, given these settings), the rep
    first sets up the mail account; the flow ends on these same settings. "Later" in
    the flow shows them straight away. With ``reach`` too (a factory of the step "How
    will your recipients reach tracking?"), that step follows the flow, either way it
    ended; then the dialog closes (flow done) or shows the settings ("Later")."""

    def __init__(
        self,
        settings: MailClientSettings,
        clipboard: QClipboard | None = None,
        parent: QWidget | None = None,
        *,
        account: Callable[[MailClientSettings], AccountFlow] | None = None,
        reach: Callable[[], ReachStep] | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self._tr = tr
        self._clipboard = clipboard or QGuiApplication.clipboard()
        self.setWindowTitle(tr.t("Set up your mail client — MailBeacon"))

        intro = QLabel(
            tr.t(
                "MailBeacon tracks the emails you send through it. In your mail client, "
                "open the settings of the <b>outgoing server (SMTP)</b> of your account "
                "and enter:"
            )
        )
        intro.setTextFormat(Qt.TextFormat.RichText)
        intro.setWordWrap(True)

        form, self.fields = settings_form(settings, tr)

        outro = QLabel(
            tr.t(
                "Incoming mail settings stay as they are. Your mail is sent on to your own "
                "outgoing server, which you enter in MailBeacon's settings."
            )
        )
        outro.setTextFormat(Qt.TextFormat.PlainText)
        outro.setWordWrap(True)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton(tr.t("&Copy"))
        self.copy_button.setToolTip(tr.t("Copy these settings to the clipboard"))
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy)
        buttons.rejected.connect(self.reject)
        self.copied_label = QLabel("")
        self.copied_label.setTextFormat(Qt.TextFormat.PlainText)

        self.instructions = QWidget()
        layout = QVBoxLayout(self.instructions)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(outro)
        layout.addWidget(self.copied_label)
        layout.addWidget(buttons)

        # One of the two shows at a time (hidden, not stacked: the window fits the one shown).
        outer = QVBoxLayout(self)
        self.account: AccountFlow | None = None
        self.reach: ReachStep | None = None
        self._account_done = False
        if account is not None:
            self.setWindowTitle(tr.t("Welcome to MailBeacon"))
            self.account = account(settings)
            self.account.contentChanged.connect(self.adjustSize)
            outer.addWidget(self.account)
            self.instructions.hide()
            if reach is None:
                self.account.completed.connect(self.accept)
                self.account.dismissed.connect(self.show_instructions)
            else:
                self.reach = reach()
                self.reach.hide()
                self.reach.completed.connect(self._reach_done)
                self.reach.contentChanged.connect(self.adjustSize)
                self.account.completed.connect(lambda _result: self.show_reach(done=True))
                self.account.dismissed.connect(lambda: self.show_reach(done=False))
                outer.addWidget(self.reach)
        outer.addWidget(self.instructions)

    def show_reach(self, done: bool) -> None:
        """After the account flow (``done``: it finished; else "Later"): the reach step."""
        self._account_done = done
        if self.reach is None:
            self._reach_done("")
            return
        self.setWindowTitle(self._tr.t("Tracking — MailBeacon"))
        if self.account is not None:
            self.account.hide()
        self.reach.show()
        self.adjustSize()

    def _reach_done(self, _choice: str) -> None:
        if self._account_done:
            self.accept()
        else:
            if self.reach is not None:
                self.reach.hide()
            self.show_instructions()

    def show_instructions(self) -> None:
        """The mail-client settings (the account is set up later, in Settings)."""
        self.setWindowTitle(self._tr.t("Set up your mail client — MailBeacon"))
        if self.account is not None:
            self.account.hide()
        self.instructions.show()
        self.adjustSize()

    def copy(self) -> None:
        """Put the settings on the clipboard."""
        self._clipboard.setText(self.settings.as_text(self._tr))
        self.copied_label.setText(self._tr.t("Copied to the clipboard."))
