"""The settings dialog under a team policy: what the team enforces shows its value,
locked, with "Set by your team"; OK keeps the rep's own value underneath; lifted, the
rep's own value is back and editable."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QCheckBox, QLabel, QScrollArea
from pytestqt.qtbot import QtBot

from mailbeacon.agent.settings.secrets import SecretStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.agent.settings.team import LOCKED_NOTE
from mailbeacon.core.policy import TeamPolicy
from mailbeacon.core.profile import Profile
from mailbeacon.tray.views.settings.dialog import SettingsDialog

SERVICE = "mailbeacon-test"
TEAM = (
    TeamPolicy()
    .with_item("privacy.enabled", "true", enforce=True)
    .with_item("tracking.clicks", "false", enforce=True)
    .with_item("defaults.log", "true", enforce=False)
)


def dialog_for(qtbot: QtBot, profile: Profile, team: TeamPolicy) -> SettingsDialog:
    own = Settings.load(profile.config_file)
    dialog = SettingsDialog(
        own, SecretStore(SERVICE), lambda s: s.save(profile.config_file), team=team
    )
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def box(dialog: SettingsDialog, key: str) -> QCheckBox:
    widget = dialog.fields[key].widget
    assert isinstance(widget, QCheckBox)
    return widget


def notes(dialog: SettingsDialog, key: str) -> list[str]:
    return [label.text() for label in dialog.fields[key].row.findChildren(QLabel)]


def test_enforced_settings_are_locked_and_the_reps_own_come_back_when_lifted(
    qtbot: QtBot, profile: Profile, tmp_path: Path
) -> None:
    own = Settings()
    own.set("privacy.enabled", "false")
    own.set("tracking.clicks", "true")
    own.save(profile.config_file)
    dialog = dialog_for(qtbot, profile, TEAM)
    privacy, clicks = box(dialog, "privacy.enabled"), box(dialog, "tracking.clicks")
    assert privacy.isChecked() and not privacy.isEnabled()
    assert not clicks.isChecked() and not clicks.isEnabled()
    assert LOCKED_NOTE in notes(dialog, "privacy.enabled")
    assert LOCKED_NOTE not in notes(dialog, "defaults.log")  # a default: the rep's choice
    assert box(dialog, "defaults.log").isEnabled()
    dialog.show_field("privacy.enabled")
    area = dialog.tabs.currentWidget()
    assert isinstance(area, QScrollArea)
    area.ensureWidgetVisible(privacy)
    assert dialog.grab().save(str(tmp_path / "settings_team_locked.png"))
    dialog.accept()
    saved = Settings.load(profile.config_file)
    assert saved.privacy.enabled is False and saved.tracking.clicks is True  # their own

    lifted = dialog_for(qtbot, profile, TEAM.without("privacy.enabled"))
    privacy = box(lifted, "privacy.enabled")
    assert not privacy.isChecked() and privacy.isEnabled()
    assert LOCKED_NOTE not in notes(lifted, "privacy.enabled")
    assert not box(lifted, "tracking.clicks").isEnabled()  # still enforced
