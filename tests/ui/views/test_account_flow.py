"""The account flow, as the rep sees it: each step's widgets and the moves between them.

The steps behind the flow are scripted (tests/helpers/account.py); the runner that
carries them to a worker thread and back is the real one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from mailbeacon.agent.account.discovery import DiscoveryFailed
from mailbeacon.agent.account.model import AuthMethod, Security, ServerSetting, Source
from mailbeacon.agent.account.setup import AccountRequest, SetupError
from mailbeacon.agent.settings.secrets import SecretStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.profile import Profile
from mailbeacon.tray.views.account.flow import AccountDialog, AccountFlow
from mailbeacon.tray.views.account.manual import InvalidServer, ManualServers
from mailbeacon.tray.views.account.runner import AccountRunner, ProfileSteps
from mailbeacon.tray.views.account.wording import CHECKING, LOOKING_UP, found_sentence
from mailbeacon.tray.views.first_run import FirstRunDialog, MailClientSettings
from mailbeacon.tray.views.settings.dialog import SettingsDialog
from tests.helpers.account import (
    ScriptedSteps,
    google,
    microsoft_by_mx,
    own_servers,
    success,
)
from tests.helpers.fakes import MemoryKeyring
from tests.helpers.tray import relay_status

WAIT_MS = 5000
MAIL_CLIENT = MailClientSettings.from_status(relay_status(), "s3cret-relay")
WRONG_PASSWORD = (
    "The outgoing server refused the user name or password: check the password, or use "
    "an app password."
)


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """Holds scripted steps until set; always set at the end, so no thread waits on."""
    event = threading.Event()
    yield event
    event.set()


def make_flow(qtbot: QtBot, steps: ScriptedSteps, **kwargs: object) -> AccountFlow:
    flow = AccountFlow(AccountRunner(steps), mail_client=MAIL_CLIENT, **kwargs)  # type: ignore[arg-type]
    qtbot.addWidget(flow)
    flow.show()
    return flow


def look_up(qtbot: QtBot, flow: AccountFlow, email: str, name: str = "Anna Kowalska") -> None:
    flow.name_edit.setText(name)
    flow.email_edit.setText(email)
    qtbot.mouseClick(flow.continue_button, Qt.MouseButton.LeftButton)
    assert flow.pages.current() is flow.busy_page
    qtbot.waitUntil(lambda: not flow.runner.busy, timeout=WAIT_MS)


def shown(flow: AccountFlow) -> QWidget | None:
    return flow.pages.current()


# ---------------------------------------------------------------- found → sign in


def test_a_built_in_provider_offers_sign_in_with_google(qtbot: QtBot) -> None:
    found = google()
    steps = ScriptedSteps(found, [success(found, AuthMethod.OAUTH2)])
    flow = make_flow(qtbot, steps)
    look_up(qtbot, flow, "anna@gmail.com")

    assert shown(flow) is flow.sign_in_page
    assert flow.found_label.text() == "Found Gmail / Google Workspace settings (built in)"
    assert "smtp.gmail.com, port 465, SSL/TLS" in flow.servers_label.text()
    assert "imap.gmail.com, port 993, SSL/TLS" in flow.servers_label.text()
    assert flow.sign_in_button.isVisible()
    assert flow.sign_in_button.text() == "Sign in with Google"
    assert "browser" in flow.sign_in_note.text()
    assert not flow.password_form.isVisible()  # the password is the second choice
    assert flow.use_password_button.isVisible()

    with qtbot.waitSignal(flow.runner.succeeded, timeout=WAIT_MS):
        qtbot.mouseClick(flow.sign_in_button, Qt.MouseButton.LeftButton)
    step, request = steps.requests[-1]
    assert step == "run"
    assert request.method is AuthMethod.OAUTH2
    assert (request.email, request.name) == ("anna@gmail.com", "Anna Kowalska")
    assert request.smtp is None  # the agent finds them again, with Google's sign-in
    assert shown(flow) is flow.done_page


def test_a_domain_whose_mail_goes_to_microsoft_offers_sign_in_with_microsoft(
    qtbot: QtBot,
) -> None:
    flow = make_flow(qtbot, ScriptedSteps(microsoft_by_mx()))
    look_up(qtbot, flow, "anna@contoso.pl")
    assert flow.sign_in_button.text() == "Sign in with Microsoft"
    assert flow.found_label.text().startswith("Found Outlook.com / Microsoft 365 settings")
    assert "(MX)" in flow.found_label.text()
    assert "Microsoft" in flow.sign_in_note.text()


def test_use_a_password_instead_shows_the_password_field(qtbot: QtBot) -> None:
    flow = make_flow(qtbot, ScriptedSteps(google()))
    look_up(qtbot, flow, "anna@gmail.com")
    qtbot.mouseClick(flow.use_password_button, Qt.MouseButton.LeftButton)
    assert flow.password_form.isVisible()
    assert flow.check_button.isVisible()
    assert not flow.use_password_button.isVisible()


@pytest.mark.parametrize(
    ("source", "words"),
    [
        (Source.SRV, "Found your mail servers in your domain's DNS (SRV)"),
        (Source.AUTOCONFIG, "Found your mail servers from your provider's configuration file"),
        (Source.PROBE, "Found your mail servers by trying the usual servers"),
    ],
)
def test_where_the_servers_were_found_is_said_in_words(
    qtbot: QtBot, source: Source, words: str
) -> None:
    assert found_sentence(own_servers(source=source)) == words
    flow = make_flow(qtbot, ScriptedSteps(own_servers(source=source)))
    look_up(qtbot, flow, "anna@mojafirma.pl")
    assert flow.found_label.text() == words
    # Password only: no sign-in button, the password field straight away.
    assert not flow.sign_in_button.isVisible()
    assert not flow.use_password_button.isVisible()
    assert flow.password_form.isVisible()
    assert flow.password_edit.hasFocus() or not QGuiApplication.focusWindow()


def test_enter_in_the_address_looks_up_once(qtbot: QtBot) -> None:
    steps = ScriptedSteps(google())
    dialog = AccountDialog(AccountRunner(steps))
    qtbot.addWidget(dialog)
    dialog.show()
    flow = dialog.flow
    qtbot.keyClicks(flow.email_edit, "anna@gmail.com")
    qtbot.keyClick(flow.email_edit, Qt.Key.Key_Return)  # the field and the default button
    qtbot.waitUntil(lambda: shown(flow) is flow.sign_in_page, timeout=WAIT_MS)
    assert [step for step, _ in steps.requests] == ["servers"]


def test_the_email_address_is_checked_before_looking_up(qtbot: QtBot) -> None:
    steps = ScriptedSteps(google())
    flow = make_flow(qtbot, steps)
    flow.email_edit.setText("anna")
    qtbot.mouseClick(flow.continue_button, Qt.MouseButton.LeftButton)
    assert shown(flow) is flow.email_page
    assert flow.email_error.isVisible()
    assert "whole email address" in flow.email_error.text()
    assert steps.requests == []


# ---------------------------------------------------------------- nothing found → manual


def test_nothing_found_shows_the_manual_fields_with_a_sentence(qtbot: QtBot) -> None:
    steps = ScriptedSteps(
        DiscoveryFailed("No mail servers were found for mojafirma.pl. Enter them under Edit "
                        "manually."),
        [success(own_servers())],
    )
    flow = make_flow(qtbot, steps)
    look_up(qtbot, flow, "anna@mojafirma.pl")

    assert shown(flow) is flow.manual_page
    note = flow.manual_note.text()
    assert note.startswith("No mail servers were found for mojafirma.pl.")
    assert "Edit manually" not in note  # the rep is already there
    assert "help pages" in note
    manual = flow.manual
    assert manual.outgoing.server.text() == ""
    assert manual.outgoing.user.text() == "anna@mojafirma.pl"
    assert manual.incoming.user.text() == "anna@mojafirma.pl"

    qtbot.mouseClick(flow.manual_continue, Qt.MouseButton.LeftButton)  # nothing typed yet
    assert shown(flow) is flow.manual_page
    assert "outgoing mail server's name" in flow.manual_error.text()

    qtbot.keyClicks(manual.outgoing.server, "smtp.mojafirma.pl")
    manual.outgoing.security.setCurrentText("STARTTLS")
    qtbot.keyClicks(manual.incoming.server, "imap.mojafirma.pl")
    manual.outgoing.user.setText("akowalska")  # a company server with its own login names
    qtbot.mouseClick(flow.manual_continue, Qt.MouseButton.LeftButton)
    assert shown(flow) is flow.sign_in_page
    assert flow.found_label.text() == "Using the servers you entered"
    assert "smtp.mojafirma.pl, port 587, STARTTLS" in flow.servers_label.text()
    assert not flow.sign_in_button.isVisible()

    qtbot.keyClicks(flow.password_edit, "app-password")
    with qtbot.waitSignal(flow.runner.succeeded, timeout=WAIT_MS):
        qtbot.mouseClick(flow.check_button, Qt.MouseButton.LeftButton)
    request = steps.requests[-1][1]
    assert request.method is AuthMethod.PASSWORD
    assert request.password == "app-password"
    assert request.smtp == ServerSetting("smtp.mojafirma.pl", 587, Security.STARTTLS)
    assert request.imap == ServerSetting("imap.mojafirma.pl", 993, Security.TLS)
    assert request.user == "akowalska"


def test_edit_manually_starts_from_what_was_found(qtbot: QtBot) -> None:
    flow = make_flow(qtbot, ScriptedSteps(own_servers()))
    look_up(qtbot, flow, "anna@mojafirma.pl")
    qtbot.mouseClick(flow.manual_from_sign_in, Qt.MouseButton.LeftButton)
    assert shown(flow) is flow.manual_page
    assert flow.manual.outgoing.server.text() == "smtp.mojafirma.pl"
    assert flow.manual.outgoing.security.currentText() == "SSL/TLS"
    assert flow.manual.incoming.port.value() == 993
    labels = [label.text() for label in flow.manual_page.findChildren(type(flow.found_label))]
    assert not any("URL" in text or "relay" in text.lower() for text in labels)


# ---------------------------------------------------------------- checking → failure, retry


def test_a_wrong_password_is_said_nothing_is_saved_and_the_rep_retries(qtbot: QtBot) -> None:
    found = own_servers()
    steps = ScriptedSteps(found, [SetupError(WRONG_PASSWORD), success(found)])
    flow = make_flow(qtbot, steps)
    completed: list[object] = []
    flow.completed.connect(completed.append)
    look_up(qtbot, flow, "anna@mojafirma.pl")

    qtbot.keyClicks(flow.password_edit, "wrong")
    with qtbot.waitSignal(flow.runner.failed, timeout=WAIT_MS) as failed:
        qtbot.mouseClick(flow.check_button, Qt.MouseButton.LeftButton)
    assert failed.args == [WRONG_PASSWORD]
    assert shown(flow) is flow.sign_in_page
    assert flow.sign_in_error.isVisible()
    assert flow.sign_in_error.text() == WRONG_PASSWORD
    assert flow.password_edit.text() == ""  # typed again, not resent
    assert steps.saved == []
    assert completed == []

    qtbot.keyClicks(flow.password_edit, "right")
    with qtbot.waitSignal(flow.runner.succeeded, timeout=WAIT_MS):
        qtbot.keyClick(flow.password_edit, Qt.Key.Key_Return)
    assert [request.password for step, request in steps.requests if step == "run"] == [
        "wrong", "right",
    ]
    assert len(steps.saved) == 1
    assert shown(flow) is flow.done_page


def test_an_empty_password_is_asked_for_without_calling_the_agent(qtbot: QtBot) -> None:
    steps = ScriptedSteps(own_servers())
    flow = make_flow(qtbot, steps)
    look_up(qtbot, flow, "anna@mojafirma.pl")
    qtbot.mouseClick(flow.check_button, Qt.MouseButton.LeftButton)
    assert "Type your password" in flow.sign_in_error.text()
    assert [step for step, _ in steps.requests] == ["servers"]


# ---------------------------------------------------------------- done


def test_success_shows_what_to_type_into_the_mail_client(qtbot: QtBot) -> None:
    found = own_servers()
    result = success(found)
    flow = make_flow(qtbot, ScriptedSteps(found, [result]))
    look_up(qtbot, flow, "anna@mojafirma.pl")
    qtbot.keyClicks(flow.password_edit, "secret")
    with qtbot.waitSignal(flow.runner.succeeded, timeout=WAIT_MS):
        qtbot.mouseClick(flow.check_button, Qt.MouseButton.LeftButton)

    assert shown(flow) is flow.done_page
    assert "anna@mojafirma.pl can send and receive mail" in flow.done_detail.text()
    assert "Outgoing mail: signed in to smtp.mojafirma.pl." in flow.done_detail.text()
    assert "Incoming mail: signed in to imap.mojafirma.pl." in flow.done_detail.text()
    assert result.smtp_said in flow.done_detail.toolTip()  # the server's own words
    values = {label: box.text() for label, box in flow.client_fields.items()}
    assert values["Server"] == "127.0.0.1"
    assert values["Port"] == str(relay_status().relay_port)
    assert values["User name"] == relay_status().relay_user
    assert values["Password"] == "s3cret-relay"
    assert all(box.isReadOnly() for box in flow.client_fields.values())

    clipboard = QGuiApplication.clipboard()
    assert flow.copy_button is not None
    qtbot.mouseClick(flow.copy_button, Qt.MouseButton.LeftButton)
    assert "Password: s3cret-relay\n" in clipboard.text()
    with qtbot.waitSignal(flow.completed, timeout=WAIT_MS) as done:
        qtbot.mouseClick(flow.finish_button, Qt.MouseButton.LeftButton)
    assert done.args == [result]


# ---------------------------------------------------------------- threads


def test_the_steps_run_off_the_ui_thread_while_the_window_keeps_working(
    qtbot: QtBot, gate: threading.Event
) -> None:
    steps = ScriptedSteps(own_servers(), gate=gate)
    flow = make_flow(qtbot, steps)
    flow.email_edit.setText("anna@mojafirma.pl")
    qtbot.mouseClick(flow.continue_button, Qt.MouseButton.LeftButton)

    assert shown(flow) is flow.busy_page
    assert flow.busy_label.text() == LOOKING_UP
    qtbot.waitUntil(lambda: len(steps.threads) == 1, timeout=WAIT_MS)
    # The step is held on its thread, and the UI thread still runs its event loop.
    timer = QTimer()
    timer.setSingleShot(True)
    with qtbot.waitSignal(timer.timeout, timeout=WAIT_MS):
        timer.start(10)
    assert steps.threads[0] != threading.get_ident()
    assert flow.runner.busy

    with qtbot.waitSignal(flow.runner.found, timeout=WAIT_MS):
        gate.set()
    assert shown(flow) is flow.sign_in_page


def test_checking_says_so_and_cancel_goes_back_and_drops_the_late_answer(
    qtbot: QtBot, gate: threading.Event
) -> None:
    found = own_servers()
    steps = ScriptedSteps(found, [success(found)])
    flow = make_flow(qtbot, steps)
    look_up(qtbot, flow, "anna@mojafirma.pl")
    steps.gate = gate
    qtbot.keyClicks(flow.password_edit, "secret")
    qtbot.mouseClick(flow.check_button, Qt.MouseButton.LeftButton)
    assert shown(flow) is flow.busy_page
    assert flow.busy_label.text() == CHECKING
    qtbot.waitUntil(lambda: len(steps.requests) == 2, timeout=WAIT_MS)

    with qtbot.waitSignal(flow.runner.busyChanged, timeout=WAIT_MS):
        qtbot.mouseClick(flow.cancel_button, Qt.MouseButton.LeftButton)
    assert shown(flow) is flow.sign_in_page
    # The step is stopped where it waits (a browser sign-in finished later saves nothing).
    qtbot.waitUntil(lambda: steps.cancelled == ["run"], timeout=WAIT_MS)
    with qtbot.assertNotEmitted(flow.runner.succeeded, wait=200):
        gate.set()
        flow.runner._worker.wait(WAIT_MS)
    assert shown(flow) is flow.sign_in_page
    assert steps.saved == []


def test_the_real_steps_find_a_built_in_provider_on_a_worker_thread(
    qtbot: QtBot, profile: Profile
) -> None:
    # A preset answers before any DNS or HTTPS: the real steps, no network needed.
    runner = AccountRunner(ProfileSteps(profile, environ={}))
    with qtbot.waitSignal(runner.found, timeout=WAIT_MS) as found:
        runner.find(AccountRequest(email="anna@gmail.com"))
    assert found.args[0].provider == "google"
    assert found.args[0].source is Source.PRESET
    assert not profile.config_file.exists()  # looking up saves nothing


@pytest.mark.expect_log("account set-up failed unexpectedly")
def test_an_unexpected_failure_is_still_a_sentence(qtbot: QtBot) -> None:
    flow = make_flow(qtbot, ScriptedSteps(own_servers(), [RuntimeError("disk on fire")]))
    look_up(qtbot, flow, "anna@mojafirma.pl")
    qtbot.keyClicks(flow.password_edit, "secret")
    with qtbot.waitSignal(flow.runner.failed, timeout=WAIT_MS):
        qtbot.mouseClick(flow.check_button, Qt.MouseButton.LeftButton)
    assert flow.sign_in_error.text() == "MailBeacon could not finish this step: disk on fire"


# ---------------------------------------------------------------- manual fields


def test_the_manual_fields_give_server_settings(qtbot: QtBot) -> None:
    manual = ManualServers()
    qtbot.addWidget(manual)
    manual.show_servers("anna@mojafirma.pl", None, None)
    assert manual.outgoing.port.value() == 465  # SSL/TLS, the usual choice
    manual.outgoing.server.setText(" SMTP.MojaFirma.pl ")
    for words, security, port in (
        ("STARTTLS", Security.STARTTLS, 587),
        ("None", Security.NONE, 25),
        ("SSL/TLS", Security.TLS, 465),
    ):
        manual.outgoing.security.setCurrentText(words)
        assert manual.outgoing.setting() == ServerSetting("smtp.mojafirma.pl", port, security)
    manual.outgoing.port.setValue(2465)  # the rep's own port stays when security changes
    manual.outgoing.security.setCurrentText("STARTTLS")
    assert manual.outgoing.setting() == ServerSetting("smtp.mojafirma.pl", 2465, Security.STARTTLS)

    assert manual.settings()[1] is None  # no incoming server: replies are not watched
    manual.incoming.server.setText("imap.mojafirma.pl")
    manual.incoming.security.setCurrentText("STARTTLS")
    assert manual.settings()[1] == ServerSetting("imap.mojafirma.pl", 143, Security.STARTTLS)

    manual.incoming.server.setText("imaps://imap.mojafirma.pl:993")
    with pytest.raises(InvalidServer, match="only the incoming mail server's name"):
        manual.settings()
    assert not manual.outgoing.user.isReadOnly()  # the login name may differ from the address


# ---------------------------------------------------------------- where the flow opens


def test_first_run_shows_the_account_first_and_later_the_mail_client(qtbot: QtBot) -> None:
    steps = ScriptedSteps(google())
    dialog = FirstRunDialog(
        MAIL_CLIENT,
        account=lambda settings: AccountFlow(AccountRunner(steps), mail_client=settings),
    )
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.account is not None
    assert dialog.account.isVisible()
    assert not dialog.instructions.isVisible()
    assert dialog.account.mail_client == MAIL_CLIENT
    qtbot.mouseClick(dialog.account.dismiss_button, Qt.MouseButton.LeftButton)
    assert dialog.instructions.isVisible()
    assert not dialog.account.isVisible()
    assert dialog.fields["Password"].text() == "s3cret-relay"


def test_first_run_closes_once_the_account_is_set_up(qtbot: QtBot) -> None:
    found = own_servers()
    steps = ScriptedSteps(found, [success(found)])
    dialog = FirstRunDialog(
        MAIL_CLIENT,
        account=lambda settings: AccountFlow(AccountRunner(steps), mail_client=settings),
    )
    qtbot.addWidget(dialog)
    dialog.show()
    flow = dialog.account
    assert flow is not None
    look_up(qtbot, flow, "anna@mojafirma.pl")
    qtbot.keyClicks(flow.password_edit, "secret")
    with qtbot.waitSignal(flow.runner.succeeded, timeout=WAIT_MS):
        qtbot.mouseClick(flow.check_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(dialog.accepted, timeout=WAIT_MS):
        qtbot.mouseClick(flow.finish_button, Qt.MouseButton.LeftButton)


def test_the_account_dialog_prefills_and_cancel_rejects(qtbot: QtBot) -> None:
    dialog = AccountDialog(
        AccountRunner(ScriptedSteps(google())), name="Anna", email="anna@gmail.com"
    )
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.flow.email_edit.text() == "anna@gmail.com"
    assert dialog.flow.dismiss_button.text() == "Cancel"
    assert dialog.flow.copy_button is None  # no mail-client settings given: none shown
    with qtbot.waitSignal(dialog.rejected, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.flow.dismiss_button, Qt.MouseButton.LeftButton)


def test_settings_opens_the_account_and_shows_what_it_saved(qtbot: QtBot) -> None:
    opened: list[str] = []
    secrets = SecretStore("mailbeacon-test-account", {}, backend=MemoryKeyring())
    dialog = SettingsDialog(Settings(), secrets, lambda _s: None,
                            open_account=lambda: opened.append("account"))
    qtbot.addWidget(dialog)
    assert dialog.account_summary.text() == "No email account is set up yet."
    qtbot.mouseClick(dialog.account_button, Qt.MouseButton.LeftButton)
    assert opened == ["account"]

    dialog.secret_fields["upstream.password"].edit.setText("typed before")
    saved = Settings()
    saved.set("account.email", "anna@mojafirma.pl")
    saved.set("upstream.url", "smtps://smtp.mojafirma.pl:465")
    saved.set("upstream.user", "anna@mojafirma.pl")
    dialog.account_saved(saved)
    assert dialog.fields["upstream.url"].text() == "smtps://smtp.mojafirma.pl:465"
    assert dialog.fields["account.email"].text() == "anna@mojafirma.pl"
    assert dialog.secret_fields["upstream.password"].text() == ""
    assert dialog.account_summary.text() == "anna@mojafirma.pl (password)"


def test_settings_without_an_account_opener_has_no_account_button(qtbot: QtBot) -> None:
    secrets = SecretStore("mailbeacon-test-account", {}, backend=MemoryKeyring())
    dialog = SettingsDialog(Settings(), secrets, lambda _s: None)
    qtbot.addWidget(dialog)
    assert not hasattr(dialog, "account_button")

