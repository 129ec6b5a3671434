"""The first-run dialog: exactly what to type into a mail client's outgoing-server settings."""

from __future__ import annotations

from dataclasses import dataclass

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

SECURITY = "None (local only)"
AUTHENTICATION = "Normal password"
UNSET_HINT = "(not set — see Settings)"


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

    def as_text(self) -> str:
        """The settings as lines of ``Label: value``, for the clipboard."""
        return "".join(f"{label}: {value}\n" for label, value in self.rows())


class FirstRunDialog(QDialog):
    """Shows the relay settings with a Copy button; ``fields`` maps labels to their boxes."""

    def __init__(
        self,
        settings: MailClientSettings,
        clipboard: QClipboard | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self._clipboard = clipboard or QGuiApplication.clipboard()
        self.setWindowTitle("Set up your mail client — MailBeacon")

        intro = QLabel(
            "MailBeacon tracks the emails you send through it. In your mail client, open "
            "the settings of the <b>outgoing server (SMTP)</b> of your account and enter:"
        )
        intro.setTextFormat(Qt.TextFormat.RichText)
        intro.setWordWrap(True)

        form = QFormLayout()
        self.fields: dict[str, QLineEdit] = {}
        for label, value in settings.rows():
            box = QLineEdit(value)
            box.setReadOnly(True)
            box.setMinimumWidth(260)
            box.setObjectName(label)
            form.addRow(f"{label}:", box)
            self.fields[label] = box

        outro = QLabel(
            "Incoming mail settings stay as they are. Your mail is sent on to your own "
            "outgoing server, which you enter in MailBeacon's settings."
        )
        outro.setTextFormat(Qt.TextFormat.PlainText)
        outro.setWordWrap(True)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("&Copy")
        self.copy_button.setToolTip("Copy these settings to the clipboard")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy)
        buttons.rejected.connect(self.reject)
        self.copied_label = QLabel("")
        self.copied_label.setTextFormat(Qt.TextFormat.PlainText)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(outro)
        layout.addWidget(self.copied_label)
        layout.addWidget(buttons)

    def copy(self) -> None:
        """Put the settings on the clipboard."""
        self._clipboard.setText(self.settings.as_text())
        self.copied_label.setText("Copied to the clipboard.")
