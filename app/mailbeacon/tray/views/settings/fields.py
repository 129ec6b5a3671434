"""The settings dialog's fields: one input widget per key, chosen by the key's value kind.

True/false: a check box; whole numbers: a spin box over the key's range;
decimals: a spin box that keeps an untouched value exactly as loaded; a choice:
a combo box; anything else: a line edit; secrets: a masked line edit where
empty keeps the stored secret. Each field has an error line under its input,
and ``text()`` gives the value as ``Settings.set`` takes it. The words shown for
each key (labels, choices, units, placeholders) live here too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.agent.settings.kinds import BoolKind, ChoiceKind, FloatKind, IntKind
from mailbeacon.agent.settings.store import SettingSpec
from mailbeacon.tray.views.labels import ERROR_STYLE, plain_label

# The words shown for each key; a key missing here shows as itself.
LABELS: dict[str, str] = {
    "server.mode": "Tracking server",
    "server.url": "Remote server URL",
    "server.enrollment": "Enrollment key",
    "server.listen": "Embedded server listens on",
    "server.public_url": "Public URL (tracking domain)",
    "relay.host": "Relay address",
    "relay.port": "Relay port",
    "relay.user": "Relay user name",
    "relay.password": "Relay password",
    "relay.max_message_bytes": "Largest message",
    "upstream.url": "Server URL",
    "upstream.user": "User name",
    "upstream.password": "Password",
    "upstream.allow_plain": "Allow unencrypted smtp:// to another machine",
    "defaults.track": "Track opens and clicks",
    "defaults.log": "Log a copy on the contacts' records",
    "tracking.opens": "Track opens (an invisible image; off: clicks only)",
    "tracking.clicks": "Track clicks (rewrite links)",
    "tracking.self_window_minutes": "Your own address counts as you for (minutes)",
    "tracking.click_token_max_days": "Tracked links work for (days)",
    "server.allow_plain": "Allow an unencrypted (http://) team server",
    "server.trusted_proxies": "Trusted local proxies (addresses)",
    "oauth.issuer": "Sign-in provider (issuer)",
    "oauth.client_id": "Client ID (from your administrator)",
    "oauth.scopes": "Scopes",
    "oauth.client_secret": "Client secret (some providers)",
    "tracking.per_recipient": "One copy per recipient",
    "tracking.settle_seconds": "Settle window",
    "tracking.repeat_window_seconds": "Repeated opens count once within",
    "privacy.enabled": "Track contacts without a lawful basis anonymously (\"Someone\")",
    "privacy.truncate_ip": "Store IP addresses truncated",
    "notify.opens": "Opens",
    "notify.clicks": "Clicks",
    "notify.replies": "Replies",
    "notify.delivery_failures": "Emails that could not be delivered",
    "notify.paused_until": "Paused until (UTC)",
    "imap.url": "Inbox URL",
    "imap.password": "Password",
    "imap.allow_plain": "Allow unencrypted imap:// to another machine",
    "sent_cleanup.enabled": "Remove the extra per-recipient copies from Sent",
    "app.autostart": "Start MailBeacon when I log in",
}
CHOICE_LABELS: dict[str, dict[str, str]] = {
    "server.mode": {
        "embedded": "On this computer (embedded)",
        "remote": "A remote server (enrollment key)",
    },
}
SUFFIXES = {
    "relay.max_message_bytes": " bytes",
    "tracking.settle_seconds": " s",
    "tracking.repeat_window_seconds": " s",
}
PLACEHOLDERS = {
    "server.url": "https://track.example.com",
    "server.public_url": "empty: http://<listen address>",
    "upstream.url": "smtps://smtp.example.com:465 or smtp+starttls://…:587",
    "imap.url": "imaps://you@imap.example.com (empty: replies not watched)",
    "notify.paused_until": "not paused",
}


def label_for(key: str) -> str:
    """The words shown for ``key``."""
    return LABELS.get(key, key)


class Field(ABC):
    """One key's input widget, its error line and the row that holds both."""

    def __init__(self, key: str, widget: QWidget, doc: str) -> None:
        self.key = key
        self.widget = widget
        self.widget.setObjectName(key)
        self.widget.setToolTip(f"{doc} ({key})" if doc else key)
        self.error = QLabel()
        self.error.setObjectName(f"{key}.error")
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.setWordWrap(True)
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.hide()
        self.row = QWidget()
        layout = QVBoxLayout(self.row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.line = QHBoxLayout()
        self.line.setContentsMargins(0, 0, 0, 0)
        self.line.addWidget(widget, 1)
        layout.addLayout(self.line)
        layout.addWidget(self.error)

    @abstractmethod
    def text(self) -> str:
        """The value as ``Settings.set`` takes it."""

    def add_note(self, text: str) -> QLabel:
        """A line of explanation under the input."""
        note = plain_label(text, wrap=True)
        layout = self.row.layout()
        if isinstance(layout, QVBoxLayout):
            layout.insertWidget(1, note)
        return note

    def show_error(self, message: str) -> None:
        """Show why the value was refused (empty: clear)."""
        self.error.setText(message)
        self.error.setVisible(bool(message))

    def set_enabled(self, enabled: bool) -> None:
        """Grey the field out (its value is still saved)."""
        self.widget.setEnabled(enabled)


class BoolField(Field):
    """A check box."""

    def __init__(self, key: str, value: bool, doc: str) -> None:
        self.box = QCheckBox(label_for(key))
        self.box.setChecked(value)
        super().__init__(key, self.box, doc)

    def text(self) -> str:
        return "true" if self.box.isChecked() else "false"


class IntField(Field):
    """A spin box over the key's range."""

    def __init__(self, key: str, value: int, kind: IntKind, doc: str) -> None:
        self.spin = QSpinBox()
        self.spin.setRange(kind.low, kind.high)
        self.spin.setGroupSeparatorShown(kind.high >= 100_000)
        self.spin.setSuffix(SUFFIXES.get(key, ""))
        if kind.high >= 100 * 1024 * 1024:
            self.spin.setSingleStep(1024 * 1024)
        self.spin.setValue(value)
        super().__init__(key, self.spin, doc)

    def text(self) -> str:
        return str(self.spin.value())


class FloatField(Field):
    """A spin box with decimals; an untouched value is kept exactly as it was."""

    def __init__(self, key: str, value: float, kind: FloatKind, doc: str) -> None:
        self.spin = QDoubleSpinBox()
        self.spin.setDecimals(2)
        self.spin.setRange(kind.low, kind.high)
        self.spin.setSingleStep(0.5)
        self.spin.setSuffix(SUFFIXES.get(key, ""))
        self.spin.setValue(value)
        self._loaded = (self.spin.value(), kind.render(value))
        super().__init__(key, self.spin, doc)

    def text(self) -> str:
        shown, original = self._loaded
        return original if self.spin.value() == shown else f"{self.spin.value():g}"


class ChoiceField(Field):
    """A combo box of the key's options."""

    def __init__(self, key: str, value: str, kind: ChoiceKind, doc: str) -> None:
        self.combo = QComboBox()
        names = CHOICE_LABELS.get(key, {})
        for option in kind.options:
            self.combo.addItem(names.get(option, option), option)
        self.combo.setCurrentIndex(max(0, kind.options.index(value)))
        super().__init__(key, self.combo, doc)

    def text(self) -> str:
        return str(self.combo.currentData())


class TextField(Field):
    """A line edit."""

    def __init__(self, key: str, value: str, doc: str) -> None:
        self.edit = QLineEdit(value)
        self.edit.setPlaceholderText(PLACEHOLDERS.get(key, ""))
        super().__init__(key, self.edit, doc)

    def text(self) -> str:
        return self.edit.text()


class SecretField(Field):
    """A masked line edit; empty keeps the stored secret."""

    def __init__(self, key: str, stored: bool | None) -> None:
        self.edit = QLineEdit()
        self.edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.show_box = QCheckBox("Show")
        self.show_box.toggled.connect(self._show)
        super().__init__(
            key, self.edit, "kept in the OS keyring, never in the settings file"
        )
        self.line.addWidget(self.show_box)
        self.set_stored(stored)

    def set_stored(self, stored: bool | None) -> None:
        """Say whether the keyring holds this secret (None: it cannot be read)."""
        self.edit.setPlaceholderText(
            "(keyring unavailable)" if stored is None
            else "stored in the keyring: leave empty to keep it" if stored
            else "not set"
        )

    def text(self) -> str:
        return self.edit.text()

    def reveal(self, text: str) -> None:
        """Put ``text`` in the field, visible (a generated password to copy)."""
        self.edit.setText(text)
        self.show_box.setChecked(True)

    def _show(self, shown: bool) -> None:
        self.edit.setEchoMode(
            QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        )


def make_field(spec: SettingSpec, value: Any) -> Field:
    """The widget for one setting, chosen by its value kind."""
    kind = spec.kind
    if isinstance(kind, BoolKind):
        return BoolField(spec.key, bool(value), spec.doc)
    if isinstance(kind, IntKind):
        return IntField(spec.key, int(value), kind, spec.doc)
    if isinstance(kind, FloatKind):
        return FloatField(spec.key, float(value), kind, spec.doc)
    if isinstance(kind, ChoiceKind):
        return ChoiceField(spec.key, str(value), kind, spec.doc)
    return TextField(spec.key, kind.render(value), spec.doc)

