"""The first-run dialog tells the rep exactly what to type into the mail client."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from mailbeacon.agent.settings.secrets import SecretStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.profile import Profile
from mailbeacon.tray.app import TrayApp
from mailbeacon.tray.assets import IconSet
from mailbeacon.tray.views.first_run import FirstRunDialog, MailClientSettings
from mailbeacon.tray.views.reach import (
    LOCAL,
    NO_LINK,
    OWN,
    TEAM,
    ReachStep,
    SaveTeamLink,
    team_link_saver,
)
from mailbeacon.tray.views.settings.wording import BAD_TEAM_LINK
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


# How recipients reach tracking (issue 20) ------------------------------------------

TEAM_LINK = Enrollment("https://track.example.com", 7, "api-token", b"k" * 32).encode()


def reach_step(qtbot: QtBot, save: SaveTeamLink) -> tuple[ReachStep, list[str]]:
    step = ReachStep(save)
    qtbot.addWidget(step)
    step.show()
    done: list[str] = []
    step.completed.connect(done.append)
    return step, done


def test_the_reach_step_asks_with_three_answers_each_said_plainly(qtbot: QtBot) -> None:
    saved: list[str] = []
    step, done = reach_step(qtbot, saved.append)
    assert [b.text() for b in step.buttons.values()] == [
        "My team has a tracking server", "My own server", "Only this computer, to try MailBeacon",
    ]
    assert not step.continue_button.isEnabled()  # an answer first, or Skip
    step.choose(TEAM)
    assert step.link_edit.isVisible() and not step.own_label.isVisible()
    step.choose(OWN)
    assert step.own_label.isVisible() and not step.link_edit.isVisible()
    guide = step.own_label.text()
    assert "packaging/server/" in guide and "packaging/OPERATORS.md" in guide
    assert "https" in guide and "team link" in guide
    step.continue_button.click()
    assert done == [OWN]
    step.choose(LOCAL)
    assert step.local_label.isVisible()
    assert "only seen when your emails are read on this computer" in step.local_label.text()
    step.continue_button.click()
    step.skip_button.click()
    assert done == [OWN, LOCAL, ""]
    assert saved == []  # only a team link saves anything


def test_a_bad_team_link_is_refused_with_a_sentence_and_nothing_saved(
    qtbot: QtBot, profile: Profile
) -> None:
    step, done = reach_step(qtbot, team_link_saver(profile))
    step.choose(TEAM)
    step.continue_button.click()
    assert step.message.text() == NO_LINK
    step.link_edit.setText("https://track.example.com/join")
    step.continue_button.click()
    assert step.message.isVisible() and step.message.text() == BAD_TEAM_LINK
    assert done == []
    assert not profile.config_file.exists()
    assert SecretStore(profile.keyring_service).enrollment() is None


def test_a_team_link_is_saved_as_the_settings_save_it(qtbot: QtBot, profile: Profile) -> None:
    restarts: list[int] = []
    step, done = reach_step(qtbot, team_link_saver(profile, lambda: restarts.append(1)))
    step.choose(TEAM)
    step.link_edit.setText(f"  {TEAM_LINK}\n")
    step.continue_button.click()
    assert done == [TEAM] and restarts == [1]
    settings = Settings.load(profile.config_file)
    assert settings.server.mode == "remote"
    assert settings.server.url == "https://track.example.com"
    stored = SecretStore(profile.keyring_service).enrollment()
    assert stored is not None and stored.encode() == TEAM_LINK
    assert "https://track.example.com" in step.message.text()


def test_on_first_run_the_reach_step_follows_the_account_flow(
    qtbot: QtBot, icons: IconSet
) -> None:
    from mailbeacon.tray.views.account.flow import AccountFlow
    from mailbeacon.tray.views.account.runner import AccountRunner
    from tests.helpers.account import ScriptedSteps, google

    def flow(settings: MailClientSettings) -> AccountFlow:
        return AccountFlow(AccountRunner(ScriptedSteps(google())), mail_client=settings)

    app = TrayApp(icons, first_run=True, relay_password=lambda: "pw", account_flow=flow,
                  reach_step=lambda: ReachStep(lambda _link: None))
    app.on_status(relay_status())
    dialog = app.setup_dialog
    assert dialog is not None and dialog.account is not None and dialog.reach is not None
    qtbot.addWidget(dialog)
    assert not dialog.reach.isVisibleTo(dialog)
    dialog.account.dismissed.emit()  # "Later"
    assert dialog.reach.isVisibleTo(dialog) and not dialog.account.isVisibleTo(dialog)
    assert not dialog.instructions.isVisibleTo(dialog)
    dialog.reach.skip_button.click()
    assert dialog.instructions.isVisibleTo(dialog) and not dialog.reach.isVisibleTo(dialog)
    dialog.close()
    app.menu.actions_by_key["setup"].trigger()  # later, from the menu: no questions
    later = app.setup_dialog
    assert later is not None and later.reach is None
    qtbot.addWidget(later)
