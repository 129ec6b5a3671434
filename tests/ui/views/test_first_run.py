"""The first-run dialog tells the rep exactly what to type into the mail client."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from mailbeacon.core.profile import Profile
from mailbeacon.tray.app import TrayApp
from mailbeacon.tray.assets import IconSet
from mailbeacon.tray.views.first_run import FirstRunDialog, MailClientSettings
from mailbeacon.tray.wiring import first_run_state
from tests.helpers.tray import relay_status

EXPECTED = {
    "Server": "127.0.0.1",
    "Port": "2525",
    "Connection security": "None (local only)",
    "Authentication": "Normal password",
    "User name": "mailbeacon",
    "Password": "s3cret-relay",
}


def test_dialog_shows_host_port_user_password(qtbot: QtBot) -> None:
    dialog = FirstRunDialog(MailClientSettings.from_status(relay_status(), "s3cret-relay"))
    qtbot.addWidget(dialog)
    shown = {label: box.text() for label, box in dialog.fields.items()}
    assert shown == EXPECTED
    assert all(box.isReadOnly() for box in dialog.fields.values())


def test_copy_puts_the_settings_on_the_clipboard(qtbot: QtBot) -> None:
    clipboard = QGuiApplication.clipboard()
    clipboard.clear()
    dialog = FirstRunDialog(MailClientSettings.from_status(relay_status(), "s3cret-relay"))
    qtbot.addWidget(dialog)
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    copied = clipboard.text()
    for label, value in EXPECTED.items():
        assert f"{label}: {value}\n" in copied
    assert dialog.copied_label.text() == "Copied to the clipboard."


def test_without_a_known_password_the_dialog_says_where_it_is(qtbot: QtBot) -> None:
    dialog = FirstRunDialog(MailClientSettings.from_status(relay_status(), None))
    qtbot.addWidget(dialog)
    assert "Settings" in dialog.fields["Password"].text()


def test_first_run_shows_the_dialog_once_the_relay_runs(qtbot: QtBot, icons: IconSet) -> None:
    recorded: list[str] = []
    app = TrayApp(
        icons,
        first_run=True,
        first_run_shown=lambda: recorded.append("shown"),
        relay_password=lambda: "s3cret-relay",
    )
    app.on_status(relay_status().__class__(relay_status().connection))  # relay not up yet
    assert app.setup_dialog is None
    app.on_status(relay_status())
    dialog = app.setup_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.addWidget(dialog)
    assert dialog.fields["Password"].text() == "s3cret-relay"
    assert recorded == ["shown"]
    dialog.close()
    app.on_status(relay_status())
    assert not dialog.isVisible()  # first run only once
    assert recorded == ["shown"]


def test_first_run_is_over_for_a_profile_once_the_dialog_was_shown(profile: Profile) -> None:
    first_run, shown = first_run_state(profile)
    assert first_run
    assert first_run_state(profile)[0]  # asking does not end it
    shown()
    assert not first_run_state(profile)[0]
    assert first_run_state(Profile.at(profile.config_dir.parent / "other"))[0]


def test_menu_item_brings_the_settings_back(qtbot: QtBot, icons: IconSet) -> None:
    app = TrayApp(icons, relay_password=lambda: "s3cret-relay")
    app.on_status(relay_status())
    assert app.setup_dialog is None
    app.menu.actions_by_key["setup"].trigger()
    assert app.setup_dialog is not None and app.setup_dialog.isVisible()
    qtbot.addWidget(app.setup_dialog)
    assert app.setup_dialog.fields["Port"].text() == "2525"


def test_on_first_run_the_mail_account_comes_first(qtbot: QtBot, icons: IconSet) -> None:
    """The rep connects the mailbox before being told about the mail client (issue 13)."""
    from mailbeacon.tray.views.account.flow import AccountFlow
    from mailbeacon.tray.views.account.runner import AccountRunner
    from tests.helpers.account import ScriptedSteps, google

    def flow(settings: MailClientSettings) -> AccountFlow:
        return AccountFlow(AccountRunner(ScriptedSteps(google())), mail_client=settings)

    app = TrayApp(icons, first_run=True, relay_password=lambda: "pw", account_flow=flow)
    app.on_status(relay_status())
    dialog = app.setup_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.addWidget(dialog)
    assert dialog.account is not None and dialog.account.isVisibleTo(dialog)
    dialog.close()
    app.menu.actions_by_key["setup"].trigger()  # later, from the menu: the instructions only
    later = app.setup_dialog
    assert later is not None and later.account is None
    qtbot.addWidget(later)
