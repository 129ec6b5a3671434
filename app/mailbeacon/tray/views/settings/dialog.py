"""The settings dialog: every setting of ``agent.settings.KEYS`` and the secrets.

Widgets are built from each key's value kind (true/false: a check box, numbers:
spin boxes with the key's range, a choice: a combo box, anything else: a line
edit), so a new key shows up even before it is given a place: keys not placed
in ``TABS`` (``settings.wording``, with every word shown) land on an "Other" tab.
The dialog's minimum size is the one at which no label, check box or button is
cut off on any tab.

OK applies everything or nothing (``settings.saving``): a refused value is
shown under its field and the dialog stays open. Secrets (relay, upstream and
incoming mail passwords, the team link) go to the ``SecretStore`` (the OS keyring),
never into the settings; an empty secret field keeps the stored secret. A
keyring that cannot be used is reported in words, and nothing is written
anywhere. The fields themselves are in ``settings.fields``.

"Test outgoing server", "Test tracking" and "Test connection" (incoming mail) are the agent's
checks (``agent.sending.check``, ``agent.tracking.check``,
``agent.mailbox.check``); the dialog only calls them, off the UI thread
(``workers.Worker``).
"""

from __future__ import annotations

import logging
import secrets as random_secrets
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Protocol

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStyle,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.agent.mailbox.check import ImapCheck, check_imap
from mailbeacon.agent.sending.check import UpstreamProbe, check_upstream
from mailbeacon.agent.sending.upstream import UpstreamCheck
from mailbeacon.agent.settings.secrets import Secret, SecretStore, SecretStoreUnavailable
from mailbeacon.agent.settings.store import KEYS, SECRET_KEYS, Settings
from mailbeacon.agent.settings.team import LOCKED_NOTE, locked_keys, overlay
from mailbeacon.agent.status import Reachable, tracking_status, tracking_url_from
from mailbeacon.agent.tracking.check import TrackingCheck, check_tracking
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.language import ENGLISH, Language, in_language, mark, said
from mailbeacon.core.policy import TeamPolicy
from mailbeacon.core.urls import TrackingUrls
from mailbeacon.tray.threads.workers import Worker
from mailbeacon.tray.views.labels import ERROR_STYLE, plain_label, show_result
from mailbeacon.tray.views.settings.fields import (
    BoolField,
    ChoiceField,
    Field,
    SecretField,
    TextField,
    make_field,
)
from mailbeacon.tray.views.settings.saving import (
    Refused,
    checked_secrets,
    checked_settings,
    write_all,
)
from mailbeacon.tray.views.settings.wording import (
    ACCOUNT_TAB,
    BAD_TEAM_LINK,
    CHECKS_TAB,
    NO_ENROLLMENT,
    NOTES,
    OPEN_TRACKING_COST,
    PER_RECIPIENT_TRADE_OFF,
    TABS,
    label_for,
)

__all__ = ["PER_RECIPIENT_TRADE_OFF", "TABS", "SettingsDialog"]

log = logging.getLogger(__name__)

# What the account flow (tray.views.account) sets; reloaded here once it saved.
ACCOUNT_SECTIONS = ("upstream", "imap", "account", "oauth")
ACCOUNT_PASSWORDS = ("upstream.password", "imap.password")
NO_ACCOUNT = mark("No email account is set up yet.")

REMOTE_ONLY = ("server.url", "server.enrollment")
EMBEDDED_ONLY = ("server.listen", "server.public_url")


# ---------------------------------------------------------------- checks


class CheckResult(Protocol):
    """What a test button reports (``UpstreamCheck`` is one)."""

    @property
    def ok(self) -> bool: ...

    @property
    def message(self) -> str: ...


TestUpstream = Callable[[UpstreamProbe], CheckResult | Awaitable[CheckResult]]
TestTracking = Callable[[Enrollment], CheckResult | Awaitable[CheckResult]]
# (imap.url, IMAP password or "" when none is typed or stored, imap.allow_plain)
TestImap = Callable[[str, str, bool], CheckResult | Awaitable[CheckResult]]
OpenUrl = Callable[[str], object]


def open_in_browser(url: str) -> bool:
    """Open ``url`` in the desktop's browser."""
    return QDesktopServices.openUrl(QUrl(url))


# ---------------------------------------------------------------- the dialog


class SettingsDialog(QDialog):
    """Every setting, grouped in tabs; OK saves all of it or none of it.

    ``save(settings)`` persists the settings (the caller's job, e.g.
    ``lambda s: s.save(profile.config_file)``); secrets go to ``secrets``.
    ``test_upstream(UpstreamProbe)``, ``test_tracking(Enrollment)`` and
    ``test_imap(url, password, allow_plain)`` may be blocking or async and run off
    the UI thread; ``open_url(url)`` opens the browser-claim page; ``open_account()``
    opens the account flow (the "Set up your email account" button shows only with it).

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
        open_account: Callable[[], None] | None = None,
        worker: Worker | None = None,
        parent: QWidget | None = None,
        team: TeamPolicy | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(parent)
        self._tr = tr
        self.setWindowTitle(tr.t("Settings — MailBeacon"))
        self.settings = settings
        self._secrets = secrets
        self._save = save
        # The agent's checks word their results in the rep's language.
        self._test_upstream: TestUpstream = test_upstream or partial(check_upstream, tr=tr)
        self._test_tracking: TestTracking = test_tracking or self._check_tracking
        self._test_imap: TestImap = test_imap or partial(check_imap, tr=tr)
        self._open_url: OpenUrl = open_url or open_in_browser
        self._open_account = open_account
        self._worker = worker or Worker(2, self)
        self.fields: dict[str, Field] = {}
        self.secret_fields: dict[str, SecretField] = {}

        self.message = plain_label(wrap=True)
        self.message.setObjectName("message")
        self.message.hide()
        stored = self._stored_secrets()
        # What the team enforces shows its value, locked; the rep's own stays saved.
        self._locked = locked_keys(team) if team is not None else frozenset()
        shown = overlay(settings, team) if team is not None else settings
        for key, spec in KEYS.items():
            self.fields[key] = make_field(spec, shown.value(key), tr)
            if key in self._locked:
                self.fields[key].add_note(tr.t(LOCKED_NOTE))
        for key, name in SECRET_KEYS.items():
            field = SecretField(key, stored.get(Secret(name)), tr)
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
        self.setMinimumSize(self._minimum_size())
        self.resize(max(680, self.minimumWidth()), 600)

        mode = self.fields["server.mode"]
        if isinstance(mode, ChoiceField):
            mode.combo.currentIndexChanged.connect(self._mode_changed)
        for key in (*REMOTE_ONLY, *EMBEDDED_ONLY):
            address = self.fields.get(key)
            if isinstance(address, TextField):
                address.edit.textChanged.connect(self._update_reach_note)
        self._mode_changed()

    # ------------------------------------------------------------ building

    def _build_tabs(self) -> None:
        placed: set[str] = set()
        for title, groups in TABS:
            page = QWidget()
            page_layout = QVBoxLayout(page)
            if title == ACCOUNT_TAB and self._open_account is not None:
                page_layout.addWidget(self._account_box(self._open_account))
            for group_title, keys in groups:
                box = QGroupBox(self._tr.t(group_title))
                form = QFormLayout(box)
                form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
                for key in keys:
                    if key in self.fields:
                        self._add_row(form, self.fields[key])
                        placed.add(key)
                        if key in NOTES:
                            self.fields[key].add_note(self._tr.t(NOTES[key]))
                    self._add_extras(form, key)
                page_layout.addWidget(box)
            if title == CHECKS_TAB:
                page_layout.addWidget(self._tracking_checks())
            page_layout.addStretch(1)
            self.tabs.addTab(_scrolled(page), self._tr.t(title).replace("&", "&&"))
        rest = [key for key in self.fields if key not in placed]
        if rest:  # a key nobody placed yet still gets a widget
            page = QWidget()
            form = QFormLayout(page)
            for key in rest:
                self._add_row(form, self.fields[key])
            self.tabs.addTab(_scrolled(page), self._tr.t("Other"))

    def _minimum_size(self) -> QSize:
        """Wide enough that every tab's widest row shows whole (no label cut off)."""
        width = 0
        for index in range(self.tabs.count()):
            area = self.tabs.widget(index)
            page = area.widget() if isinstance(area, QScrollArea) else None
            if page is not None:
                width = max(width, page.minimumSizeHint().width())
        # The scroll bar, the tab frame and the dialog's own margins around the page.
        margins = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent) + 2 * 24
        # Every tab's title shows too (translated titles run longer than the English).
        tabs = self.tabs.tabBar().sizeHint().width() + 2 * 12
        return QSize(max(width + margins, tabs), 480)

    def _add_row(self, form: QFormLayout, field: Field) -> None:
        if field.full_row:
            form.addRow(field.row)
        else:
            label = QLabel(self._tr.t("{label}:", label=label_for(field.key, self._tr)))
            label.setTextFormat(Qt.TextFormat.PlainText)
            label.setBuddy(field.widget)
            form.addRow(label, field.row)

    def _add_extras(self, form: QFormLayout, key: str) -> None:
        tr = self._tr
        if key == "relay.password":
            self.generate_button = QPushButton(tr.t("&Generate"))
            self.generate_button.setToolTip(tr.t("Make up a new random relay password"))
            self.generate_button.clicked.connect(self.generate_relay_password)
            self.fields[key].line.addWidget(self.generate_button)
        elif key == "upstream.allow_plain":
            self.test_upstream_button = QPushButton(tr.t("Test &outgoing server"))
            self.test_upstream_button.setToolTip(
                tr.t(
                    "Signs in to your outgoing mail server with the values above (not yet "
                    "saved); sends nothing"
                )
            )
            self.test_upstream_button.clicked.connect(self.run_upstream_test)
            self.upstream_result = plain_label(wrap=True)
            self.upstream_result.setObjectName("upstream_result")
            # Under the button, the form's whole width: beside it, the answer was a
            # narrow column cut to "Connected to smtp://" (issue 20).
            self._button_and_result(form, self.test_upstream_button, self.upstream_result)
        elif key == "imap.allow_plain":
            self.test_imap_button = QPushButton(tr.t("Test co&nnection"))
            self.test_imap_button.setToolTip(
                tr.t(
                    "Logs in to your inbox with the values above (not yet saved) and opens "
                    "INBOX read-only"
                )
            )
            self.test_imap_button.clicked.connect(self.run_imap_test)
            self.imap_result = plain_label(wrap=True)
            self.imap_result.setObjectName("imap_result")
            # Preferred width would keep the long answer in a narrow, clipped column.
            self.imap_result.setSizePolicy(
                QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred
            )
            form.addRow(self.test_imap_button, self.imap_result)
        elif key == "tracking.opens":
            self.opens_note = plain_label(tr.t(OPEN_TRACKING_COST), wrap=True)
            self.opens_note.setObjectName("opens_note")
            form.addRow(self.opens_note)
        elif key == "tracking.per_recipient":
            self.per_recipient_note = plain_label(tr.t(PER_RECIPIENT_TRADE_OFF), wrap=True)
            self.per_recipient_note.setObjectName("per_recipient_note")
            form.addRow(self.per_recipient_note)

    def _tracking_checks(self) -> QGroupBox:
        tr = self._tr
        box = QGroupBox(tr.t("Check"))
        form = QFormLayout(box)
        # Said before any test, as the tray and compose say it (issue 20): an address
        # recipients cannot reach means their opens and clicks are never seen.
        self.reach_note = plain_label(wrap=True)
        self.reach_note.setObjectName("reach_note")
        self.reach_note.setStyleSheet(ERROR_STYLE)
        form.addRow(self.reach_note)
        self.claim_button = QPushButton(tr.t("&Mark this browser as mine"))
        self.claim_button.setToolTip(
            tr.t(
                "Opens a page on your tracking server in your browser; your own clicks from "
                "that browser are then never counted as the recipient's"
            )
        )
        self.claim_button.clicked.connect(self.claim_browser)
        self.claim_result = plain_label(wrap=True)
        form.addRow(self.claim_button, self.claim_result)
        self.test_tracking_button = QPushButton(tr.t("Test &tracking"))
        self.test_tracking_button.setToolTip(
            tr.t("Fetches a test pixel from your tracking server, as a recipient would")
        )
        self.test_tracking_button.clicked.connect(self.run_tracking_test)
        self.tracking_result = plain_label(wrap=True)
        self.tracking_result.setObjectName("tracking_result")
        # Under the button, the box's whole width: a public address's result is a
        # line per step (name, secure connection, answer), too long for half a row.
        self._button_and_result(form, self.test_tracking_button, self.tracking_result)
        return box

    @staticmethod
    def _button_and_result(form: QFormLayout, button: QPushButton, result: QLabel) -> None:
        """A test button, and its answer under it across the whole form."""
        button_row = QHBoxLayout()
        button_row.addWidget(button)
        button_row.addStretch(1)
        form.addRow(button_row)
        form.addRow(result)

    def _account_box(self, open_account: Callable[[], None]) -> QGroupBox:
        box = QGroupBox(self._tr.t("Your email account"))
        layout = QVBoxLayout(box)
        self.account_summary = plain_label(wrap=True)
        self._show_account_summary(self.settings)
        self.account_button = QPushButton(self._tr.t("Set up your &email account…"))
        self.account_button.clicked.connect(open_account)
        layout.addWidget(self.account_summary)
        layout.addWidget(self.account_button, 0, Qt.AlignmentFlag.AlignLeft)
        return box

    def _show_account_summary(self, settings: Settings) -> None:
        email = settings.account.email or settings.upstream.user
        tr = self._tr
        if not email:
            self.account_summary.setText(tr.t(NO_ACCOUNT))
        elif settings.account.auth == "oauth2":
            self.account_summary.setText(tr.t("{email} (signed in with your provider)",
                                              email=email))
        else:
            self.account_summary.setText(tr.t("{email} (password)", email=email))

    def account_saved(self, saved: Settings) -> None:
        """The account flow saved ``saved``: show its account values, so OK keeps them."""
        for key in KEYS:
            if key.split(".", 1)[0] in ACCOUNT_SECTIONS:
                _show_value(self.fields[key], saved.get(key))
        stored = self._stored_secrets()
        for key in ACCOUNT_PASSWORDS:
            field = self.secret_fields[key]
            field.edit.clear()  # a password typed before would replace the one just saved
            field.set_stored(stored.get(Secret(SECRET_KEYS[key])))
        for section in ACCOUNT_SECTIONS:
            setattr(self.settings, section, getattr(saved, section))
        if self._open_account is not None:
            self._show_account_summary(saved)

    def _stored_secrets(self) -> dict[Secret, bool | None]:
        """Which secrets are stored (None: the keyring cannot be read)."""
        stored: dict[Secret, bool | None] = {}
        for name in SECRET_KEYS.values():
            try:
                stored[Secret(name)] = self._secrets.is_set(Secret(name))
            except SecretStoreUnavailable as exc:
                self._show_message(in_language(said(exc), self._tr), error=True)
                stored[Secret(name)] = None
        return stored

    def _mode_changed(self, *_: object) -> None:
        remote = self.fields["server.mode"].text() == "remote"
        for key in REMOTE_ONLY:
            self.fields[key].set_enabled(remote)
        for key in EMBEDDED_ONLY:
            self.fields[key].set_enabled(not remote)
        for key in self._locked:
            self.fields[key].set_enabled(False)
        self._update_reach_note()

    def tracking_url(self) -> str:
        """The address emails would carry with the values typed (as the agent decides)."""
        def typed(key: str) -> str:
            return self.fields[key].text().strip()

        return tracking_url_from(typed("server.mode"), typed("server.url"),
                                 typed("server.public_url"), typed("server.listen"))

    def _update_reach_note(self, *_: object) -> None:
        """Say, with the values typed, when recipients could never reach tracking."""
        url = self.tracking_url()
        status = tracking_status(url, tr=self._tr) if url else None
        unreachable = status is not None and status.reachable == Reachable.NO
        self.reach_note.setText(
            self._tr.t(
                "{detail} Use your team's server (Count opens), or give this computer's "
                "server a public https address (Address in your emails).",
                detail=status.detail,
            )
            if status is not None and unreachable else ""
        )
        self.reach_note.setVisible(unreachable)

    # ------------------------------------------------------------ OK

    def accept(self) -> None:
        """Validate everything, then write secrets and settings; stay open on a problem."""
        for field in self.fields.values():
            field.show_error("")
        self._show_message("")
        trial, errors = checked_settings(
            self.settings,
            {key: self.fields[key].text() for key in KEYS if key not in self._locked},
        )
        secrets, secret_errors = checked_secrets(
            {key: field.text() for key, field in self.secret_fields.items()}
        )
        errors.update(secret_errors)
        if errors:
            self._show_errors(errors)
            return
        try:
            write_all(self._secrets, self._save, trial, secrets, self._tr)
        except Refused as exc:
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
                show_result(label, None, "")
        super().done(result)

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
            self.fields[key].show_error(in_language(message, self._tr))
        self.show_field(next(iter(errors)))
        tr = self._tr
        names = ", ".join(f"{label_for(key, tr)} ({key})" for key in errors)
        self._show_message(tr.t("Nothing was saved. Please correct: {names}.", names=names),
                           error=True)

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
        show_result(self.upstream_result, None, self._tr.t("Testing…"))
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
        show_result(self.imap_result, None, self._tr.t("Testing…"))
        self._worker.submit(call, self._imap_done, self._imap_failed)

    def run_tracking_test(self) -> None:
        """Fetch a test pixel from the tracking server (off the UI thread)."""
        enrollment = self._enrollment(self.tracking_result)
        if enrollment is None:
            self.trackingTested.emit(False, self.tracking_result.text())
            return
        test = self._test_tracking
        self.test_tracking_button.setEnabled(False)
        show_result(self.tracking_result, None,
                    self._tr.t("Testing {address}…", address=enrollment.server_url))
        self._worker.submit(
            lambda: test(enrollment), self._tracking_done, self._tracking_failed
        )

    def _check_tracking(self, enrollment: Enrollment) -> Awaitable[TrackingCheck]:
        # The rep's own domain decides whether the tracking domain is "theirs" (issue 21).
        sender_domain = self.settings.account.email.rpartition("@")[2] or None
        return check_tracking(enrollment, sender_domain=sender_domain, tr=self._tr)

    def claim_browser(self) -> None:
        """Open the browser-claim page, so the rep's own clicks count as "self"."""
        enrollment = self._enrollment(self.claim_result)
        if enrollment is None:
            return
        url = TrackingUrls(enrollment).claim()
        if self._open_url(url) is False:
            show_result(
                self.claim_result, False,
                self._tr.t("No browser could be opened. Open this address in the browser "
                           "you use: {url}", url=url),
            )
            return
        show_result(
            self.claim_result, True,
            self._tr.t("Opened your tracking server in the browser: your clicks from that "
                       "browser now count as your own."),
        )

    def _enrollment(self, report: QLabel) -> Enrollment | None:
        """The key typed into the dialog, else the stored one; problems go to ``report``."""
        text = self.secret_fields["server.enrollment"].text().strip()
        try:
            enrollment = Enrollment.decode(text) if text else self._secrets.enrollment()
        except ValueError as exc:
            log.info("the typed team link is not valid: %s", exc)
            show_result(report, False, self._tr.t(BAD_TEAM_LINK))
            return None
        except SecretStoreUnavailable as exc:
            show_result(report, False, in_language(said(exc), self._tr))
            return None
        if enrollment is None:
            show_result(report, False, self._tr.t(NO_ENROLLMENT))
        return enrollment

    def _upstream_done(self, result: CheckResult) -> None:
        self.test_upstream_button.setEnabled(True)
        show_result(self.upstream_result, result.ok, result.message)
        self.upstreamTested.emit(result.ok, result.message)

    def _upstream_failed(self, error: BaseException) -> None:
        self._upstream_done(UpstreamCheck(False, self._could_not_run(error)))

    def _imap_done(self, result: CheckResult) -> None:
        self.test_imap_button.setEnabled(True)
        show_result(self.imap_result, result.ok, result.message)
        self.imapTested.emit(result.ok, result.message)

    def _imap_failed(self, error: BaseException) -> None:
        self._imap_done(ImapCheck(False, self._could_not_run(error)))

    def _tracking_done(self, result: CheckResult) -> None:
        self.test_tracking_button.setEnabled(True)
        show_result(self.tracking_result, result.ok, result.message)
        self.trackingTested.emit(result.ok, result.message)

    def _tracking_failed(self, error: BaseException) -> None:
        self._tracking_done(TrackingCheck(False, self._could_not_run(error)))

    def _could_not_run(self, error: BaseException) -> str:
        return self._tr.t("The test could not run: {error}", error=error)


# ---------------------------------------------------------------- helpers


def _show_value(field: Field, text: str) -> None:
    """Put a setting's text into its field."""
    if isinstance(field, TextField):
        field.edit.setText(text)
    elif isinstance(field, ChoiceField):
        field.combo.setCurrentIndex(max(0, field.combo.findData(text)))
    elif isinstance(field, BoolField):
        field.box.setChecked(text == "true")


def _scrolled(page: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidget(page)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area
