"""The "Edit manually" fields: per server (outgoing, incoming) its name, port, security
and user name, giving ``ServerSetting`` values. Never a URL: the agent builds those.

The user name is the rep's email address: the agent signs in to both servers with
it (``AccountSetup``), so the field shows it and cannot be changed here.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.agent.account.model import Security, ServerSetting
from mailbeacon.core.language import ENGLISH, Language, mark

# The words a mail client uses for each choice, in the order mail clients list them.
SECURITY_LABELS: dict[Security, str] = {
    Security.NONE: mark("None"),
    Security.STARTTLS: "STARTTLS",
    Security.TLS: "SSL/TLS",
}
SECURITY_WORDS = {label: security for security, label in SECURITY_LABELS.items()}
# The port each kind of server usually listens on, by its security.
USUAL_PORTS: dict[str, dict[Security, int]] = {
    "smtp": {Security.TLS: 465, Security.STARTTLS: 587, Security.NONE: 25},
    "imap": {Security.TLS: 993, Security.STARTTLS: 143, Security.NONE: 143},
}
EXAMPLES = {"smtp": "smtp.example.com", "imap": "imap.example.com"}


class InvalidServer(ValueError):
    """A field cannot be used; the message says what to type instead."""


class ServerFields(QGroupBox):
    """One server's fields: ``server``, ``port``, ``security`` and ``user``."""

    def __init__(
        self, protocol: str, title: str, optional: bool = False, tr: Language = ENGLISH
    ) -> None:
        super().__init__(tr.t(title))
        self._tr = tr
        self.protocol = protocol
        self.optional = optional
        self.server = QLineEdit()
        self.server.setPlaceholderText(
            tr.t("e.g. {example} (empty: replies are not watched)", example=EXAMPLES[protocol])
            if optional else tr.t("e.g. {example}", example=EXAMPLES[protocol])
        )
        self.server.setObjectName(f"{protocol}_server")
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setObjectName(f"{protocol}_port")
        self.security = QComboBox()
        self.security.setObjectName(f"{protocol}_security")
        for security, label in SECURITY_LABELS.items():
            self.security.addItem(tr.t(label), str(security))
        self.user = QLineEdit()
        self.user.setObjectName(f"{protocol}_user")
        self.user.setToolTip(
            tr.t("Usually your email address; some company servers use another name")
        )
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.addRow(tr.t("Server:"), self.server)
        form.addRow(tr.t("Port:"), self.port)
        form.addRow(tr.t("Security:"), self.security)
        form.addRow(tr.t("User name:"), self.user)
        self._shown_security = Security.TLS
        self.set_setting(None)
        self.security.currentIndexChanged.connect(self._security_changed)

    def set_setting(self, setting: ServerSetting | None) -> None:
        """Show ``setting`` (None: empty, with the usual secure choice)."""
        security = setting.security if setting else Security.TLS
        self._shown_security = security
        self.security.blockSignals(True)  # the port below is the setting's, not the usual one
        self.security.setCurrentIndex(self.security.findData(str(security)))
        self.security.blockSignals(False)
        self.server.setText(setting.host if setting else "")
        self.port.setValue(setting.port if setting else USUAL_PORTS[self.protocol][security])

    def chosen_security(self) -> Security:
        """The security chosen in the list."""
        return Security(str(self.security.currentData()))

    def setting(self) -> ServerSetting | None:
        """The server as typed; None for an optional server left empty.

        Raises :class:`InvalidServer` with a sentence for the rep."""
        host = self.server.text().strip().rstrip(".").lower()
        if not host:
            if self.optional:
                return None
            raise InvalidServer(self._tr.t(
                "Type the {server} server's name, like {example}.",
                server=self.title().lower(), example=EXAMPLES[self.protocol],
            ))
        if "/" in host or ":" in host or " " in host or "@" in host:
            raise InvalidServer(self._tr.t(
                "Type only the {server} server's name, like {example}; the port goes in its "
                "own box.", server=self.title().lower(), example=EXAMPLES[self.protocol],
            ))
        return ServerSetting(host, self.port.value(), self.chosen_security())

    def _security_changed(self) -> None:
        # A port still at the usual one for the old choice moves to the new choice's.
        chosen = self.chosen_security()
        usual = USUAL_PORTS[self.protocol]
        if self.port.value() == usual[self._shown_security]:
            self.port.setValue(usual[chosen])
        self._shown_security = chosen


class ManualServers(QWidget):
    """Both servers' fields; ``outgoing`` and ``incoming`` are :class:`ServerFields`."""

    def __init__(self, parent: QWidget | None = None, tr: Language = ENGLISH) -> None:
        super().__init__(parent)
        self._tr = tr
        self.outgoing = ServerFields("smtp", mark("Outgoing mail"), tr=tr)
        self.incoming = ServerFields("imap", mark("Incoming mail"), optional=True, tr=tr)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.outgoing)
        layout.addWidget(self.incoming)
        layout.setAlignment(Qt.AlignmentFlag.AlignTop)

    def show_servers(
        self, email: str, smtp: ServerSetting | None, imap: ServerSetting | None
    ) -> None:
        """Fill the fields (with what was found, or empty) for ``email``."""
        self.outgoing.set_setting(smtp)
        self.incoming.set_setting(imap)
        self.set_user(email)

    def set_user(self, email: str) -> None:
        """The login name both servers are signed in to with."""
        self.outgoing.user.setText(email)
        self.incoming.user.setText(email)

    def login(self) -> str:
        """The login name typed (one for both servers; the outgoing field's)."""
        return self.outgoing.user.text().strip()

    def settings(self) -> tuple[ServerSetting, ServerSetting | None]:
        """(outgoing, incoming or None); raises :class:`InvalidServer` with a sentence."""
        smtp = self.outgoing.setting()
        if smtp is None:  # pragma: no cover - the outgoing server is never optional
            raise InvalidServer(self._tr.t("Type the outgoing mail server's name."))
        return smtp, self.incoming.setting()
