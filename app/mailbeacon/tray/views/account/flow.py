"""The rep's mail account in one short flow (first run, and Settings → Account).

Name and email address → "Looking up your mail servers…" → what was found and where
from, with the provider's sign-in button (OAuth: the system browser) or a password
field → "Checking your outgoing and incoming mail…" (the agent logs in to both
servers for real, and saves only if both let it in) → done, with what to type into
the mail client. "Edit manually" shows each server's name, port, security and user.

The flow only shows and asks; the work is the agent's (``agent.account.setup``), run
off the UI thread by :class:`~mailbeacon.tray.views.account.runner.AccountRunner`.
A failure is the agent's sentence, shown where the rep can fix it; nothing was saved.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QClipboard, QFont, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.agent.account.discovery import ENTER_MANUALLY
from mailbeacon.agent.account.model import AuthMethod, Discovered, Source
from mailbeacon.agent.account.setup import AccountRequest, AccountResult
from mailbeacon.core.language import ENGLISH, Language, mark
from mailbeacon.tray.views.account.manual import InvalidServer, ManualServers
from mailbeacon.tray.views.account.runner import AccountRunner
from mailbeacon.tray.views.account.wording import (
    CHECKING,
    IN_BROWSER,
    LOOKING_UP,
    NOT_FOUND_HINT,
    PROVIDER_SHORT,
    SIGNING_IN,
    WHOLE_ADDRESS,
    Who,
    found_sentence,
    looks_like_email,
    server_line,
    sign_in_label,
)
from mailbeacon.tray.views.first_run import MailClientSettings, settings_form
from mailbeacon.tray.views.labels import ERROR_STYLE, OK_STYLE, plain_label, show_status

# The sign-in button is the page's one big action; the password is the quiet way out.
SIGN_IN_STYLE = (
    "QPushButton { background-color: #1a73e8; color: white; border: none; border-radius: 6px;"
    " padding: 10px 24px; }"
    " QPushButton:hover { background-color: #1765cc; }"
    " QPushButton:pressed { background-color: #185abc; }"
    " QPushButton:focus { border: 2px solid #0b3d91; }"
)
LINK_STYLE = (
    "QPushButton { color: #1a5fb4; text-decoration: underline; border: none; padding: 2px 0; }"
)

# ---------------------------------------------------------------- helpers


def _heading(text: str) -> QLabel:
    label = plain_label(text, wrap=True)
    font = QFont(label.font())
    font.setBold(True)
    font.setPointSizeF(font.pointSizeF() * 1.3)
    label.setFont(font)
    return label


def _row(*items: QWidget | None) -> QHBoxLayout:
    """Buttons in a row; None is the stretch between the left and right ones."""
    row = QHBoxLayout()
    for item in items:
        if item is None:
            row.addStretch(1)
        else:
            row.addWidget(item)
    return row


def _page(*parts: QWidget | QLayout | None) -> QWidget:
    """A page of widgets and layouts top to bottom; None is the stretch before the buttons."""
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(8)
    for part in parts:
        if part is None:
            layout.addSpacing(16)  # the buttons stand apart from what they act on
            layout.addStretch(1)
        elif isinstance(part, QLayout):
            layout.addLayout(part)
        else:
            layout.addWidget(part)
    return page


def _error_label(name: str) -> QLabel:
    label = plain_label(wrap=True)
    label.setObjectName(name)
    label.setStyleSheet(ERROR_STYLE)
    label.hide()
    return label


# ---------------------------------------------------------------- the flow


class Pages(QWidget):
    """One page shown at a time, the others hidden; sized by the page shown (a
    ``QStackedWidget`` is as tall as its tallest page, leaving short pages half empty)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pages: list[QWidget] = []
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def add(self, page: QWidget) -> None:
        """Add a page (hidden until shown)."""
        self._pages.append(page)
        self._layout.addWidget(page)
        page.setVisible(len(self._pages) == 1)

    def show_page(self, page: QWidget) -> None:
        """Show ``page`` and hide the others."""
        for other in self._pages:
            if other is not page:
                other.hide()
        page.show()

    def current(self) -> QWidget | None:
        """The page shown."""
        return next((page for page in self._pages if not page.isHidden()), None)


class AccountFlow(QWidget):
    """The pages of the flow in a stack: ``email_page``, ``busy_page``, ``sign_in_page``,
    ``manual_page``, ``done_page``.

    Signals: ``completed(AccountResult)`` when the rep closes the done page (the account
    is saved by then); ``dismissed()`` on "Later"/"Cancel" (nothing saved);
    ``contentChanged()`` after each step or message: the window fits itself to it.
    ``mail_client`` is what the done page tells the rep to type into the mail client.
    """

    completed = Signal(object)
    dismissed = Signal()
    contentChanged = Signal()

    def __init__(
        self,
        runner: AccountRunner,
        *,
        mail_client: MailClientSettings | None = None,
        name: str = "",
        email: str = "",
        dismiss_text: str = mark("Later"),
        clipboard: QClipboard | None = None,
        parent: QWidget | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(parent)
        self._tr = tr
        self.runner = runner
        runner.setParent(self)
        self.mail_client = mail_client
        self._clipboard = clipboard or QGuiApplication.clipboard()
        self.found: Discovered | None = None
        self.login = ""  # typed under Edit manually; empty: the email address
        self.result: AccountResult | None = None
        self._back_from_busy: QWidget | None = None
        self._change_pending = False

        self.pages = Pages()
        self.email_page = self._build_email_page(name, email, dismiss_text)
        self.busy_page = self._build_busy_page()
        self.sign_in_page = self._build_sign_in_page()
        self.manual_page = self._build_manual_page()
        self.done_page = self._build_done_page()
        for page in (
            self.email_page, self.busy_page, self.sign_in_page, self.manual_page, self.done_page,
        ):
            self.pages.add(page)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.pages)
        self.setMinimumWidth(540)
        self.setMinimumHeight(180)  # short pages do not shrink the window to a strip
        for button in self.findChildren(QPushButton):
            button.setAutoDefault(False)  # Enter means the page's main button, set in go_to
        self.go_to(self.email_page)

        runner.found.connect(self.show_found)
        runner.notFound.connect(self.show_not_found)
        runner.succeeded.connect(self.show_done)
        runner.failed.connect(self.show_failure)

    # ------------------------------------------------------------ building

    def _build_email_page(self, name: str, email: str, dismiss_text: str) -> QWidget:
        intro = plain_label(
            self._tr.t("MailBeacon sends your emails through your own email account. Type "
                       "your name and email address: MailBeacon finds the rest."),
            wrap=True,
        )
        self.name_edit = QLineEdit(name)
        self.name_edit.setObjectName("name")
        self.name_edit.setPlaceholderText(self._tr.t("as your recipients see it"))
        self.email_edit = QLineEdit(email)
        self.email_edit.setObjectName("email")
        self.email_edit.setPlaceholderText("you@yourcompany.com")
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.addRow(self._tr.t("Your name:"), self.name_edit)
        form.addRow(self._tr.t("Email address:"), self.email_edit)
        self.email_error = _error_label("email_error")
        self.manual_from_email = QPushButton(self._tr.t("Edit &manually"))
        self.manual_from_email.clicked.connect(self.edit_manually)
        self.dismiss_button = QPushButton(self._tr.t(dismiss_text))
        self.dismiss_button.clicked.connect(self._dismiss)
        self.continue_button = QPushButton(self._tr.t("&Continue"))
        self.continue_button.setDefault(True)
        self.continue_button.clicked.connect(self.look_up)
        self.email_edit.returnPressed.connect(self.look_up)
        buttons = _row(self.manual_from_email, None, self.dismiss_button, self.continue_button)
        heading = _heading(self._tr.t("Your email account"))
        return _page(heading, intro, form, self.email_error, None, buttons)

    def _build_busy_page(self) -> QWidget:
        self.busy_label = _heading(self._tr.t(LOOKING_UP))
        self.busy_label.setObjectName("busy")
        self.busy_detail = plain_label(wrap=True)
        self.busy_detail.hide()
        progress = QProgressBar()
        progress.setRange(0, 0)  # no known length: the bar just moves
        progress.setTextVisible(False)
        self.cancel_button = QPushButton(self._tr.t("Cancel"))
        self.cancel_button.clicked.connect(self.cancel)
        return _page(self.busy_label, self.busy_detail, progress, None, _row(None,
                                                                              self.cancel_button))

    def _build_sign_in_page(self) -> QWidget:
        self.found_label = _heading("")
        self.found_label.setObjectName("found")
        self.servers_label = plain_label(wrap=True)
        self.servers_label.setObjectName("servers")
        self.sign_in_button = QPushButton(self._tr.t("Sign in"))
        self.sign_in_button.setObjectName("sign_in")
        self.sign_in_button.setMinimumHeight(44)
        self.sign_in_button.setStyleSheet(SIGN_IN_STYLE)
        self.sign_in_button.setCursor(Qt.CursorShape.PointingHandCursor)
        font = QFont(self.sign_in_button.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.sign_in_button.setFont(font)
        self.sign_in_button.clicked.connect(self.sign_in)
        self.sign_in_note = plain_label(wrap=True)
        self.use_password_button = QPushButton(self._tr.t("Use a password instead"))
        self.use_password_button.setFlat(True)
        self.use_password_button.setStyleSheet(LINK_STYLE)
        self.use_password_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.use_password_button.clicked.connect(lambda: self._password_mode(True))

        self.password_edit = QLineEdit()
        self.password_edit.setObjectName("password")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.returnPressed.connect(self.check_password)
        self.password_form = QWidget()
        form = QFormLayout(self.password_form)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.addRow(self._tr.t("Password or app password:"), self.password_edit)
        self.password_note = plain_label(
            self._tr.t("If your account asks for a code when you sign in, make an app "
                       "password in your account's security settings and type it here."),
            wrap=True,
        )

        self.sign_in_error = _error_label("sign_in_error")
        back = QPushButton(self._tr.t("&Back"))
        back.clicked.connect(lambda: self.go_to(self.email_page))
        self.manual_from_sign_in = QPushButton(self._tr.t("Edit &manually"))
        self.manual_from_sign_in.clicked.connect(self.edit_manually)
        self.check_button = QPushButton(self._tr.t("&Continue"))
        self.check_button.clicked.connect(self.check_password)
        buttons = _row(back, self.manual_from_sign_in, None, self.check_button)
        return _page(
            self.found_label, self.servers_label, self.sign_in_button, self.sign_in_note,
            _row(self.use_password_button, None), self.password_form, self.password_note,
            self.sign_in_error,
            None, buttons,
        )

    def _build_manual_page(self) -> QWidget:
        self.manual_note = plain_label(wrap=True)
        self.manual_note.setObjectName("manual_note")
        self.manual = ManualServers(tr=self._tr)
        self.manual_error = _error_label("manual_error")
        back = QPushButton(self._tr.t("&Back"))
        back.clicked.connect(self._back_from_manual)
        self.manual_continue = QPushButton(self._tr.t("&Continue"))
        self.manual_continue.clicked.connect(self.use_manual)
        return _page(
            _heading(self._tr.t("Your mail servers")), self.manual_note, self.manual,
            self.manual_error, None, _row(back, None, self.manual_continue),
        )

    def _build_done_page(self) -> QWidget:
        self.done_label = _heading(self._tr.t("Your email account is set up"))
        self.done_detail = plain_label(wrap=True)
        self.done_detail.setObjectName("done_detail")
        self.done_detail.setStyleSheet(OK_STYLE)
        parts: list[QWidget | QLayout | None] = [self.done_label, self.done_detail]
        self.client_fields: dict[str, QLineEdit] = {}
        self.copy_button: QPushButton | None = None
        self.copied_label = plain_label()
        if self.mail_client is not None:
            intro = QLabel(
                self._tr.t("<b>One last step:</b> in your mail client, open the settings of "
                           "your account's <b>outgoing server (SMTP)</b> and enter:")
            )
            intro.setTextFormat(Qt.TextFormat.RichText)
            intro.setWordWrap(True)
            form, self.client_fields = settings_form(self.mail_client, self._tr)
            self.copy_button = QPushButton(self._tr.t("&Copy"))
            self.copy_button.setToolTip(self._tr.t("Copy these settings to the clipboard"))
            self.copy_button.clicked.connect(self.copy)
            parts += [intro, form, _row(self.copy_button, self.copied_label, None)]
        self.finish_button = QPushButton(self._tr.t("&Done"))
        self.finish_button.clicked.connect(self._finish)
        parts += [None, _row(None, self.finish_button)]
        return _page(*parts)

    # ------------------------------------------------------------ steps

    def who(self) -> Who:
        """The name and address as typed."""
        return Who(self.name_edit.text().strip(), self.email_edit.text().strip())

    def look_up(self) -> None:
        """Email page → look the servers up (off the UI thread)."""
        if self.pages.current() is not self.email_page:
            return  # Enter reached both the field and the default button
        who = self.who()
        if not looks_like_email(who.email):
            self._say(self.email_error, self._tr.t(WHOLE_ADDRESS))
            self.email_edit.setFocus()
            return
        self._say(self.email_error, "")
        self.manual.set_user(who.email)
        self.show_busy(self._tr.t(LOOKING_UP), back_to=self.email_page)
        self.runner.find(AccountRequest(email=who.email, name=who.name))

    def show_busy(self, text: str, detail: str = "", back_to: QWidget | None = None) -> None:
        """The waiting page, saying what MailBeacon is doing."""
        self._back_from_busy = back_to
        self.busy_label.setText(text)
        self._say(self.busy_detail, detail)
        self.go_to(self.busy_page)

    def cancel(self) -> None:
        """Stop waiting for the running step and go back to where it started."""
        self.runner.cancel()
        self.go_to(self._back_from_busy or self.email_page)

    def show_found(self, found: Discovered) -> None:
        """What was found, and how to sign in."""
        self.found = found
        tr = self._tr
        self.found_label.setText(found_sentence(found, tr))
        lines = [tr.t("Outgoing mail: {server}", server=server_line(found.smtp, tr))]
        if found.imap is not None:
            lines.append(tr.t("Incoming mail: {server}", server=server_line(found.imap, tr)))
        self.servers_label.setText("\n".join(lines))
        label = sign_in_label(found, tr)
        self.sign_in_button.setVisible(label is not None)
        self.use_password_button.setVisible(
            label is not None and AuthMethod.PASSWORD in found.auth
        )
        if label is not None:
            who = PROVIDER_SHORT.get(found.provider or "") or tr.t("your provider")
            self.sign_in_button.setText(label)
            self.sign_in_note.setText(tr.t(
                "Opens your browser, where you sign in with {provider}. MailBeacon never "
                "sees your password.", provider=who,
            ))
        self._say(self.sign_in_note, self.sign_in_note.text() if label else "")
        self._password_mode(label is None)
        self._say(self.sign_in_error, "")
        self.password_edit.clear()
        self.go_to(self.sign_in_page)
        (self.password_edit if label is None else self.sign_in_button).setFocus()

    def show_not_found(self, sentence: str) -> None:
        """Discovery found nothing: the manual fields, with the sentence saying so."""
        said = sentence.replace(f" {self._tr.t(ENTER_MANUALLY)}", "").strip()
        self.edit_manually()
        self._say(self.manual_note, f"{said} {self._tr.t(NOT_FOUND_HINT)}")

    def edit_manually(self) -> None:
        """The manual fields, filled with what was found (if anything)."""
        email = self.who().email
        found = self.found if self.found is not None and self.found.email == email else None
        self.manual.show_servers(email, found.smtp if found else None,
                                 found.imap if found else None)
        self.manual_note.setText(
            self._tr.t("Type your mail servers as your email provider lists them.")
        )
        self._say(self.manual_error, "")
        self.go_to(self.manual_page)
        self.manual.outgoing.server.setFocus()

    def use_manual(self) -> None:
        """Manual page → sign in with a password to the servers typed."""
        who = self.who()
        if not looks_like_email(who.email):
            self.go_to(self.email_page)
            self._say(self.email_error, self._tr.t(WHOLE_ADDRESS))
            return
        try:
            smtp, imap = self.manual.settings()
        except InvalidServer as exc:
            self._say(self.manual_error, str(exc))
            return
        self.login = "" if self.manual.login() == who.email else self.manual.login()
        self.show_found(Discovered(
            email=who.email, provider=None, source=Source.MANUAL, smtp=smtp, imap=imap,
            auth=(AuthMethod.PASSWORD,),
        ))

    def sign_in(self) -> None:
        """Sign in with the provider in the browser, then check both servers."""
        if self.found is None:
            return
        request = AccountRequest(
            email=self.found.email, name=self.who().name, method=AuthMethod.OAUTH2
        )  # no servers given: the agent finds them again, with the provider's sign-in
        self.show_busy(self._tr.t(SIGNING_IN), self._tr.t(IN_BROWSER), back_to=self.sign_in_page)
        self.runner.set_up(request)

    def check_password(self) -> None:
        """Try both servers with the password typed."""
        if self.found is None or self.pages.current() is not self.sign_in_page:
            return  # Enter reached both the field and the default button
        password = self.password_edit.text()
        if not password:
            self._say(self.sign_in_error, self._tr.t("Type your password (or app password)."))
            self.password_edit.setFocus()
            return
        found = self.found
        request = AccountRequest(
            email=found.email, name=self.who().name, method=AuthMethod.PASSWORD,
            password=password, smtp=found.smtp, imap=found.imap, login=self.login,
        )  # the servers the rep sees are the ones tried
        self._say(self.sign_in_error, "")
        self.show_busy(self._tr.t(CHECKING), back_to=self.sign_in_page)
        self.runner.set_up(request)

    def show_failure(self, sentence: str) -> None:
        """Signing in or a server failed: the sentence, and the rep tries again."""
        self.go_to(self.sign_in_page)
        self._say(self.sign_in_error, sentence)
        self.password_edit.clear()
        if self.password_form.isVisibleTo(self.sign_in_page):
            self.password_edit.setFocus()

    def show_done(self, result: AccountResult) -> None:
        """Saved: both servers checked, then what to type into the mail client."""
        self.result = result
        servers = result.servers
        tr = self._tr
        lines = [tr.t("{email} can send and receive mail through MailBeacon.",
                      email=servers.email)]
        lines.append(tr.t("Outgoing mail: signed in to {server}.", server=servers.smtp.host))
        if servers.imap is not None:
            lines.append(tr.t("Incoming mail: signed in to {server}.", server=servers.imap.host))
        self.done_detail.setText("\n".join(lines))
        # The servers' own answers name addresses and protocols: there for whoever asks.
        said = [result.smtp_said, result.imap_said or ""]
        self.done_detail.setToolTip("\n".join(line for line in said if line))
        self.go_to(self.done_page)
        self.finish_button.setDefault(True)
        self.finish_button.setFocus()

    def copy(self) -> None:
        """Put the mail-client settings on the clipboard."""
        if self.mail_client is not None:
            self._clipboard.setText(self.mail_client.as_text(self._tr))
            show_status(self.copied_label, self._tr.t("Copied to the clipboard."))

    # ------------------------------------------------------------ internals

    def go_to(self, page: QWidget) -> None:
        """Show ``page`` and make its main button the one Enter presses."""
        self.pages.show_page(page)
        main = {
            self.email_page: self.continue_button,
            self.sign_in_page: self.check_button,
            self.manual_page: self.manual_continue,
            self.done_page: self.finish_button,
        }.get(page)
        if main is not None:
            main.setDefault(True)
        self._changed()

    def _changed(self) -> None:
        """Say ``contentChanged`` once the layouts took the change in (a window fitted to
        layouts not yet updated clips wrapped text), once per burst of changes."""
        if not self._change_pending:
            self._change_pending = True
            QTimer.singleShot(0, self, self._emit_changed)

    def _emit_changed(self) -> None:
        self._change_pending = False
        self.contentChanged.emit()

    def _say(self, label: QLabel, text: str) -> None:
        """Show ``text`` in ``label`` (hidden when empty); the window grows to fit it."""
        label.setText(text)
        label.setVisible(bool(text))
        self._changed()

    def _password_mode(self, on: bool) -> None:
        self.password_form.setVisible(on)
        self.password_note.setVisible(on)  # beside the form: a wrapped label in it is clipped
        self.check_button.setVisible(on)
        if on:
            self.use_password_button.hide()
            self.password_edit.setFocus()
        self._changed()

    def _back_from_manual(self) -> None:
        found = self.found
        email = self.who().email
        if found is not None and found.email == email:
            self.go_to(self.sign_in_page)
        else:
            self.go_to(self.email_page)

    def _dismiss(self) -> None:
        self.runner.cancel()
        self.dismissed.emit()

    def _finish(self) -> None:
        if self.result is not None:
            self.completed.emit(self.result)


class AccountDialog(QDialog):
    """The flow as its own window (Settings → Account): done accepts, "Cancel" rejects."""

    def __init__(
        self,
        runner: AccountRunner,
        *,
        mail_client: MailClientSettings | None = None,
        name: str = "",
        email: str = "",
        parent: QWidget | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(tr.t("Your email account — MailBeacon"))
        self.flow = AccountFlow(
            runner, mail_client=mail_client, name=name, email=email,
            dismiss_text=mark("Cancel"), tr=tr,
        )
        self.flow.completed.connect(self.accept)
        self.flow.dismissed.connect(self.reject)
        self.flow.contentChanged.connect(self.adjustSize)
        layout = QVBoxLayout(self)
        layout.addWidget(self.flow)

    def done(self, result: int) -> None:
        """Close; a step still running reports to nobody."""
        self.flow.runner.close()
        super().done(result)
