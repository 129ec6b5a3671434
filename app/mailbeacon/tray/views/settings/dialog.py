"""The settings dialog: every setting of ``agent.settings.KEYS`` and the secrets.

Widgets are built from each key's value kind (true/false: a check box, numbers:
spin boxes with the key's range, a choice: a combo box, anything else: a line
edit), so a new key shows up even before it is given a place: keys not placed
in ``TABS`` land on an "Other" tab.

OK applies everything or nothing. The values go through ``Settings.set`` on a
copy (the same parsing and checks as ``mailbeacon config set``); a refused value
is shown under its field and the dialog stays open. Secrets (relay, upstream
and IMAP passwords, the enrollment key) go to the ``SecretStore`` (the OS
keyring), never into the settings; an empty secret field keeps the stored
secret. Secrets are written first and rolled back if saving the settings fails,
so an OK never leaves half of a change behind. A keyring that cannot be used is
reported in words, and nothing is written anywhere.

"Test upstream", "Test tracking" and the IMAP "Test connection" run off the UI
thread (``workers.Worker``).
"""

from __future__ import annotations

import logging
import secrets as random_secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.agent.mailbox.check import ImapCheck, check_imap
from mailbeacon.agent.sending.upstream import (
    Credentials,
    Upstream,
    UpstreamCheck,
    UpstreamConfigError,
    parse_upstream,
)
from mailbeacon.agent.settings.kinds import BoolKind, ChoiceKind, FloatKind, IntKind
from mailbeacon.agent.settings.secrets import Secret, SecretStore, SecretStoreUnavailable
from mailbeacon.agent.settings.store import KEYS, SECRET_KEYS, SettingError, Settings, SettingSpec
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.tokens import new_message_key
from mailbeacon.core.urls import TrackingUrls
from mailbeacon.tray.threads.workers import Worker

log = logging.getLogger(__name__)

ERROR_STYLE = "color: #b00020;"
OK_STYLE = "color: #1b5e20;"
PER_RECIPIENT_TRADE_OFF = (
    "Each recipient gets their own copy with their own pixel, so opens name them; "
    "some providers then keep several copies in Sent."
)
NO_ENROLLMENT = (
    "There is no tracking server yet. With the embedded server, start MailBeacon once "
    "and it creates one; with a remote server, paste the enrollment key above."
)

# ---------------------------------------------------------------- layout and wording

# Tab -> group -> keys (settings and secrets), in the order shown.
TABS: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...] = (
    ("Account && server", (
        ("Tracking server", (
            "server.mode", "server.url", "server.enrollment", "server.listen",
            "server.public_url",
        )),
    )),
    ("Sending", (
        ("Relay (your mail client sends here)", (
            "relay.host", "relay.port", "relay.user", "relay.password",
            "relay.max_message_bytes",
        )),
        ("Your outgoing mail server", (
            "upstream.url", "upstream.user", "upstream.password", "upstream.allow_plain",
        )),
    )),
    ("Tracking", (
        ("New emails", ("defaults.track", "defaults.log")),
        ("How tracking works", (
            "tracking.clicks", "tracking.per_recipient", "tracking.settle_seconds",
            "tracking.repeat_window_seconds",
        )),
    )),
    ("Privacy", (("Data privacy", ("privacy.enabled", "privacy.truncate_ip")),)),
    ("Notifications", (
        ("Notify me of", (
            "notify.opens", "notify.clicks", "notify.replies", "notify.delivery_failures",
        )),
        ("Pause", ("notify.paused_until",)),
    )),
    ("IMAP", (
        ("Your inbox (for replies)", ("imap.url", "imap.password", "imap.allow_plain")),
        ("Sent folder", ("sent_cleanup.enabled",)),
    )),
    ("App", (("Desktop", ("app.autostart",)),)),
)

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
    "tracking.clicks": "Track clicks (rewrite links)",
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
REMOTE_ONLY = ("server.url", "server.enrollment")
EMBEDDED_ONLY = ("server.listen", "server.public_url")


def label_for(key: str) -> str:
    """The words shown for ``key``."""
    return LABELS.get(key, key)


# ---------------------------------------------------------------- checks


class CheckResult(Protocol):
    """What a test button reports (``UpstreamCheck`` is one)."""

    @property
    def ok(self) -> bool: ...

    @property
    def message(self) -> str: ...


@dataclass(frozen=True, slots=True)
class TrackingCheck:
    """Result of "Test tracking"."""

    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class UpstreamProbe:
    """What "Test upstream" tries: the values in the dialog, not yet saved."""

    url: str
    user: str
    password: str | None  # None: none typed and none stored
    allow_plain: bool


TestUpstream = Callable[[UpstreamProbe], CheckResult | Awaitable[CheckResult]]
TestTracking = Callable[[Enrollment], CheckResult | Awaitable[CheckResult]]
# (imap.url, IMAP password or "" when none is typed or stored, imap.allow_plain)
TestImap = Callable[[str, str, bool], CheckResult | Awaitable[CheckResult]]
OpenUrl = Callable[[str], object]


async def check_upstream(probe: UpstreamProbe, seconds: float = 15.0) -> UpstreamCheck:
    """Connect and log in to the outgoing server once."""
    if not probe.url.strip():
        return UpstreamCheck(False, "Enter the URL of your outgoing mail server first.")
    try:
        url = parse_upstream(probe.url, allow_plain=probe.allow_plain)
    except UpstreamConfigError as exc:
        return UpstreamCheck(False, str(exc))
    user = url.user or probe.user
    credentials = Credentials(user, probe.password or "") if user else None
    upstream = Upstream(url, lambda: credentials, timeout=seconds)
    try:
        return await upstream.test_connection()
    finally:
        await upstream.close()


async def check_tracking(enrollment: Enrollment, seconds: float = 10.0) -> TrackingCheck:
    """Fetch a freshly minted test pixel the way a recipient's mail client would.

    A GET (not HEAD) so the whole path is tried; the server records it like any
    open of an email the agent does not know, and nobody is notified.
    """
    base = enrollment.server_url
    url = TrackingUrls(enrollment).pixel(new_message_key(), None)
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(timeout=seconds, follow_redirects=False) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        return TrackingCheck(
            False,
            f"The tracking server at {base} did not answer ({reason}). With the embedded "
            "server, MailBeacon must be running; a remote server must be reachable at "
            "that address.",
        )
    elapsed_ms = (time.perf_counter() - started) * 1000
    content_type = response.headers.get("content-type", "").split(";")[0].strip()
    if (
        response.status_code == 200
        and content_type == "image/gif"
        and response.content.startswith(b"GIF")
    ):
        return TrackingCheck(
            True,
            f"Tracking works: {base} answered with the pixel (200 image/gif) "
            f"in {elapsed_ms:.0f} ms.",
        )
    return TrackingCheck(
        False,
        f"{base} answered {response.status_code} {content_type or '(no type)'} instead of "
        "the pixel (200 image/gif). Is that address really your MailBeacon tracking server?",
    )


def open_in_browser(url: str) -> bool:
    """Open ``url`` in the desktop's browser."""
    return QDesktopServices.openUrl(QUrl(url))


# ---------------------------------------------------------------- fields


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
        note = _plain_label(text)
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


# ---------------------------------------------------------------- the dialog


class _Refused(Exception):
    """Saving stopped; the message is for the rep."""


class SettingsDialog(QDialog):
    """Every setting, grouped in tabs; OK saves all of it or none of it.

    ``save(settings)`` persists the settings (the caller's job, e.g.
    ``lambda s: s.save(profile.config_file)``); secrets go to ``secrets``.
    ``test_upstream(UpstreamProbe)``, ``test_tracking(Enrollment)`` and
    ``test_imap(url, password, allow_plain)`` may be blocking or async and run off
    the UI thread; ``open_url(url)`` opens the browser-claim page.

    Signals: ``settingsSaved(Settings)`` after a successful OK;
    ``upstreamTested(ok, message)``, ``trackingTested(ok, message)`` and
    ``imapTested(ok, message)`` when a test finished.
    """

    settingsSaved = Signal(object)
    upstreamTested = Signal(bool, str)
    trackingTested = Signal(bool, str)
    imapTested = Signal(bool, str)

    def __init__(
        self,
        settings: Settings,
        secrets: SecretStore,
        save: Callable[[Settings], None],
        *,
        test_upstream: TestUpstream | None = None,
        test_tracking: TestTracking | None = None,
        test_imap: TestImap | None = None,
        open_url: OpenUrl | None = None,
        worker: Worker | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings — MailBeacon")
        self.settings = settings
        self._secrets = secrets
        self._save = save
        self._test_upstream: TestUpstream = test_upstream or check_upstream
        self._test_tracking: TestTracking = test_tracking or check_tracking
        self._test_imap: TestImap = test_imap or check_imap
        self._open_url: OpenUrl = open_url or open_in_browser
        self._worker = worker or Worker(2, self)
        self.fields: dict[str, Field] = {}
        self.secret_fields: dict[str, SecretField] = {}

        self.message = _plain_label()
        self.message.setObjectName("message")
        self.message.hide()
        stored = self._stored_secrets()
        for key, spec in KEYS.items():
            self.fields[key] = make_field(spec, settings.value(key))
        for key, name in SECRET_KEYS.items():
            field = SecretField(key, stored.get(Secret(name)))
            self.fields[key] = self.secret_fields[key] = field

        self.tabs = QTabWidget()
        self._build_tabs()
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)

        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.resize(640, 560)

        mode = self.fields["server.mode"]
        if isinstance(mode, ChoiceField):
            mode.combo.currentIndexChanged.connect(self._mode_changed)
        self._mode_changed()

    # ------------------------------------------------------------ building

    def _build_tabs(self) -> None:
        placed: set[str] = set()
        for title, groups in TABS:
            page = QWidget()
            page_layout = QVBoxLayout(page)
            for group_title, keys in groups:
                box = QGroupBox(group_title)
                form = QFormLayout(box)
                form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
                for key in keys:
                    if key in self.fields:
                        self._add_row(form, self.fields[key])
                        placed.add(key)
                    self._add_extras(form, key)
                page_layout.addWidget(box)
            if title == "Tracking":
                page_layout.addWidget(self._tracking_checks())
            page_layout.addStretch(1)
            self.tabs.addTab(_scrolled(page), title)
        rest = [key for key in self.fields if key not in placed]
        if rest:  # a key nobody placed yet still gets a widget
            page = QWidget()
            form = QFormLayout(page)
            for key in rest:
                self._add_row(form, self.fields[key])
            self.tabs.addTab(_scrolled(page), "Other")

    @staticmethod
    def _add_row(form: QFormLayout, field: Field) -> None:
        if isinstance(field, BoolField):
            form.addRow(field.row)
        else:
            label = QLabel(f"{label_for(field.key)}:")
            label.setTextFormat(Qt.TextFormat.PlainText)
            label.setBuddy(field.widget)
            form.addRow(label, field.row)

    def _add_extras(self, form: QFormLayout, key: str) -> None:
        if key == "relay.password":
            self.generate_button = QPushButton("&Generate")
            self.generate_button.setToolTip("Make up a new random relay password")
            self.generate_button.clicked.connect(self.generate_relay_password)
            field = self.fields[key]
            field.line.addWidget(self.generate_button)
            field.add_note("After changing it, enter the new password in your mail client too.")
        elif key == "upstream.allow_plain":
            self.test_upstream_button = QPushButton("Test &upstream")
            self.test_upstream_button.clicked.connect(self.run_upstream_test)
            self.upstream_result = _plain_label()
            self.upstream_result.setObjectName("upstream_result")
            form.addRow(self.test_upstream_button, self.upstream_result)
        elif key == "imap.allow_plain":
            self.test_imap_button = QPushButton("Test co&nnection")
            self.test_imap_button.setToolTip(
                "Logs in to your inbox with the values above (not yet saved) and opens "
                "INBOX read-only"
            )
            self.test_imap_button.clicked.connect(self.run_imap_test)
            self.imap_result = _plain_label()
            self.imap_result.setObjectName("imap_result")
            # Preferred width would keep the long answer in a narrow, clipped column.
            self.imap_result.setSizePolicy(
                QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred
            )
            form.addRow(self.test_imap_button, self.imap_result)
        elif key == "tracking.per_recipient":
            self.per_recipient_note = _plain_label(PER_RECIPIENT_TRADE_OFF)
            self.per_recipient_note.setObjectName("per_recipient_note")
            form.addRow(self.per_recipient_note)

    def _tracking_checks(self) -> QGroupBox:
        box = QGroupBox("Check")
        form = QFormLayout(box)
        self.claim_button = QPushButton("&Mark this browser as mine")
        self.claim_button.setToolTip(
            "Opens a page on your tracking server in your browser; your own clicks from "
            "that browser are then never counted as the recipient's"
        )
        self.claim_button.clicked.connect(self.claim_browser)
        self.claim_result = _plain_label()
        form.addRow(self.claim_button, self.claim_result)
        self.test_tracking_button = QPushButton("Test &tracking")
        self.test_tracking_button.setToolTip(
            "Fetches a test pixel from your tracking server, as a recipient would"
        )
        self.test_tracking_button.clicked.connect(self.run_tracking_test)
        self.tracking_result = _plain_label()
        self.tracking_result.setObjectName("tracking_result")
        form.addRow(self.test_tracking_button, self.tracking_result)
        return box

    def _stored_secrets(self) -> dict[Secret, bool | None]:
        """Which secrets are stored (None: the keyring cannot be read)."""
        stored: dict[Secret, bool | None] = {}
        for name in SECRET_KEYS.values():
            try:
                stored[Secret(name)] = self._secrets.is_set(Secret(name))
            except SecretStoreUnavailable as exc:
                self._show_message(str(exc), error=True)
                stored[Secret(name)] = None
        return stored

    def _mode_changed(self, *_: object) -> None:
        remote = self.fields["server.mode"].text() == "remote"
        for key in REMOTE_ONLY:
            self.fields[key].set_enabled(remote)
        for key in EMBEDDED_ONLY:
            self.fields[key].set_enabled(not remote)

    # ------------------------------------------------------------ OK

    def accept(self) -> None:
        """Validate everything, then write secrets and settings; stay open on a problem."""
        for field in self.fields.values():
            field.show_error("")
        self._show_message("")
        trial, errors = self._checked_settings()
        secrets, secret_errors = self._checked_secrets()
        errors.update(secret_errors)
        if errors:
            self._show_errors(errors)
            return
        try:
            self._write(trial, secrets)
        except _Refused as exc:
            self._show_message(str(exc), error=True)
            return
        self.settings = trial
        for key, field in self.secret_fields.items():
            field.edit.clear()
            field.show_box.setChecked(False)
            if Secret(SECRET_KEYS[key]) in secrets:
                field.set_stored(True)
        self.settingsSaved.emit(trial)
        super().accept()

    def done(self, result: int) -> None:
        """Close; a test still running reports to nobody, and the dialog can open again."""
        self._worker.cancel_all()
        for button, label in (
            (self.test_upstream_button, self.upstream_result),
            (self.test_tracking_button, self.tracking_result),
            (self.test_imap_button, self.imap_result),
        ):
            if not button.isEnabled():
                button.setEnabled(True)
                _show_result(label, None, "")
        super().done(result)

    def _checked_settings(self) -> tuple[Settings, dict[str, str]]:
        """A copy with every value applied, and the refusals by key."""
        trial = self.settings.copy()
        pending = {key: self.fields[key].text() for key in KEYS}
        errors: dict[str, str] = {}
        # A value may be refused only because of another one not applied yet
        # (smtp:// before allow_plain): retry while that makes progress (bounded).
        for _round in range(len(KEYS)):
            errors = {}
            progressed = False
            for key, text in list(pending.items()):
                try:
                    trial.set(key, text)
                except SettingError as exc:
                    errors[key] = _reason(key, exc)
                else:
                    del pending[key]
                    progressed = True
            if not errors or not progressed:
                break
        return trial, errors

    def _checked_secrets(self) -> tuple[dict[Secret, str], dict[str, str]]:
        """Typed secrets by name (an enrollment key decoded), and refusals by key."""
        values: dict[Secret, str] = {}
        errors: dict[str, str] = {}
        for key, field in self.secret_fields.items():
            text = field.text()
            name = Secret(SECRET_KEYS[key])
            if name is Secret.ENROLLMENT:
                text = text.strip()
                if text:
                    try:
                        Enrollment.decode(text)
                    except ValueError as exc:
                        errors[key] = str(exc)
                        continue
            if text:
                values[name] = text
        return values, errors

    def _write(self, trial: Settings, values: dict[Secret, str]) -> None:
        """Secrets first (rolled back if anything after them fails), then the settings."""
        names = _affected(values)
        try:
            before = {name: self._secrets.get(name) for name in names}
        except SecretStoreUnavailable as exc:
            log.warning("settings not saved: %s", exc)
            raise _Refused(f"Nothing was saved. {exc}") from exc
        try:
            for name, value in values.items():
                if name is Secret.ENROLLMENT:
                    self._secrets.set_enrollment(Enrollment.decode(value))
                else:
                    self._secrets.set(name, value)
            self._save(trial)
        except SecretStoreUnavailable as exc:
            self._restore(before)
            log.warning("settings not saved: %s", exc)
            raise _Refused(f"Nothing was saved. {exc}") from exc
        except (OSError, SettingError) as exc:
            self._restore(before)
            log.error("saving the settings failed: %s", exc)
            raise _Refused(f"The settings could not be saved, nothing was changed: {exc}") from exc
        except Exception as exc:  # whatever the caller's save raises, the rep gets words
            self._restore(before)
            log.exception("saving the settings failed")
            raise _Refused(f"The settings could not be saved, nothing was changed: {exc}") from exc

    def _restore(self, before: dict[Secret, str | None]) -> None:
        # Best effort: put back what the keyring held before this OK. (A secret that
        # came from the environment reads as that value and is written back as such.)
        for name, value in before.items():
            try:
                if value is None:
                    self._secrets.delete(name)
                else:
                    self._secrets.set(name, value)
            except SecretStoreUnavailable as exc:
                log.error("could not restore %s after a failed save: %s", name, exc)

    def show_field(self, key: str) -> None:
        """Bring the tab holding ``key``'s widget to the front and focus the widget."""
        widget = self.fields[key].widget
        for index in range(self.tabs.count()):
            page = self.tabs.widget(index)
            if page is not None and page.isAncestorOf(widget):
                self.tabs.setCurrentIndex(index)
                break
        widget.setFocus()

    def _show_errors(self, errors: dict[str, str]) -> None:
        for key, message in errors.items():
            self.fields[key].show_error(message)
        self.show_field(next(iter(errors)))
        names = ", ".join(f"{label_for(key)} ({key})" for key in errors)
        self._show_message(f"Nothing was saved. Please correct: {names}.", error=True)

    def _show_message(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(ERROR_STYLE if error else "")
        self.message.setVisible(bool(text))

    # ------------------------------------------------------------ buttons

    def generate_relay_password(self) -> str:
        """Put a new random relay password into its field (saved on OK)."""
        password = random_secrets.token_urlsafe(18)
        self.secret_fields["relay.password"].reveal(password)
        return password

    def run_upstream_test(self) -> None:
        """Try the outgoing server with the values in the dialog (off the UI thread)."""
        probe = UpstreamProbe(
            url=self.fields["upstream.url"].text().strip(),
            user=self.fields["upstream.user"].text().strip(),
            password=self.secret_fields["upstream.password"].text() or None,
            allow_plain=self.fields["upstream.allow_plain"].text() == "true",
        )
        secrets, test = self._secrets, self._test_upstream

        def call() -> CheckResult | Awaitable[CheckResult]:
            if probe.password is None:  # the stored one, read here: keyring calls may block
                password = secrets.get(Secret.UPSTREAM_PASSWORD)
                return test(UpstreamProbe(probe.url, probe.user, password, probe.allow_plain))
            return test(probe)

        self.test_upstream_button.setEnabled(False)
        _show_result(self.upstream_result, None, "Testing…")
        self._worker.submit(call, self._upstream_done, self._upstream_failed)

    def run_imap_test(self) -> None:
        """Log in to the inbox with the values in the dialog (off the UI thread)."""
        url = self.fields["imap.url"].text().strip()
        typed = self.secret_fields["imap.password"].text()
        allow_plain = self.fields["imap.allow_plain"].text() == "true"
        secrets, test = self._secrets, self._test_imap

        def call() -> CheckResult | Awaitable[CheckResult]:
            # The stored password is read here, not on the UI thread: keyring calls may block.
            password = typed or secrets.get(Secret.IMAP_PASSWORD) or ""
            return test(url, password, allow_plain)

        self.test_imap_button.setEnabled(False)
        _show_result(self.imap_result, None, "Testing…")
        self._worker.submit(call, self._imap_done, self._imap_failed)

    def run_tracking_test(self) -> None:
        """Fetch a test pixel from the tracking server (off the UI thread)."""
        enrollment = self._enrollment(self.tracking_result)
        if enrollment is None:
            self.trackingTested.emit(False, self.tracking_result.text())
            return
        test = self._test_tracking
        self.test_tracking_button.setEnabled(False)
        _show_result(self.tracking_result, None, f"Testing {enrollment.server_url}…")
        self._worker.submit(
            lambda: test(enrollment), self._tracking_done, self._tracking_failed
        )

    def claim_browser(self) -> None:
        """Open the browser-claim page, so the rep's own clicks count as "self"."""
        enrollment = self._enrollment(self.claim_result)
        if enrollment is None:
            return
        url = TrackingUrls(enrollment).claim()
        if self._open_url(url) is False:
            _show_result(
                self.claim_result, False, f"No browser could be opened. Open this address "
                f"in the browser you use: {url}"
            )
            return
        _show_result(
            self.claim_result, True,
            "Opened your tracking server in the browser: your clicks from that browser "
            "now count as your own.",
        )

    def _enrollment(self, report: QLabel) -> Enrollment | None:
        """The key typed into the dialog, else the stored one; problems go to ``report``."""
        text = self.secret_fields["server.enrollment"].text().strip()
        try:
            enrollment = Enrollment.decode(text) if text else self._secrets.enrollment()
        except ValueError as exc:
            _show_result(report, False, f"The enrollment key is not valid: {exc}")
            return None
        except SecretStoreUnavailable as exc:
            _show_result(report, False, str(exc))
            return None
        if enrollment is None:
            _show_result(report, False, NO_ENROLLMENT)
        return enrollment

    def _upstream_done(self, result: CheckResult) -> None:
        self.test_upstream_button.setEnabled(True)
        _show_result(self.upstream_result, result.ok, result.message)
        self.upstreamTested.emit(result.ok, result.message)

    def _upstream_failed(self, error: BaseException) -> None:
        self._upstream_done(UpstreamCheck(False, f"The test could not run: {error}"))

    def _imap_done(self, result: CheckResult) -> None:
        self.test_imap_button.setEnabled(True)
        _show_result(self.imap_result, result.ok, result.message)
        self.imapTested.emit(result.ok, result.message)

    def _imap_failed(self, error: BaseException) -> None:
        self._imap_done(ImapCheck(False, f"The test could not run: {error}"))

    def _tracking_done(self, result: CheckResult) -> None:
        self.test_tracking_button.setEnabled(True)
        _show_result(self.tracking_result, result.ok, result.message)
        self.trackingTested.emit(result.ok, result.message)

    def _tracking_failed(self, error: BaseException) -> None:
        self._tracking_done(TrackingCheck(False, f"The test could not run: {error}"))


# ---------------------------------------------------------------- helpers


def _reason(key: str, error: SettingError) -> str:
    text = str(error)
    prefix = f"{key}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _affected(values: Iterable[Secret]) -> list[Secret]:
    """The keyring entries writing ``values`` touches (an enrollment writes three)."""
    names: list[Secret] = []
    for name in values:
        if name is Secret.ENROLLMENT:
            names += [Secret.ENROLLMENT, Secret.API_TOKEN, Secret.SIGNING_KEY]
        else:
            names.append(name)
    return names


def _plain_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _show_result(label: QLabel, ok: bool | None, text: str) -> None:
    label.setText(text)
    label.setStyleSheet("" if ok is None else OK_STYLE if ok else ERROR_STYLE)


def _scrolled(page: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidget(page)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area
