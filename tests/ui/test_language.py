"""The tray speaks the rep's language and switches at run time (issue 19): the menu, the
tooltip and the status line, the activity feed with Polish relative times and plural
forms, and a language saved in Settings that remakes the windows and tells the tray,
without a restart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QLocale, Qt, QTimer
from PySide6.QtWidgets import QApplication, QComboBox, QLabel, QMessageBox
from pytestqt.qtbot import QtBot

from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.settings.secrets import SecretStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.language import ENGLISH, Language
from mailbeacon.core.policy import TeamPolicy
from mailbeacon.core.profile import Profile
from mailbeacon.core.uainfo import describe
from mailbeacon.core.uainfo import label as device_label
from mailbeacon.tray.app import TrayApp
from mailbeacon.tray.assets import IconSet
from mailbeacon.tray.icon.menu import Windows
from mailbeacon.tray.language import QtLanguage
from mailbeacon.tray.views.account.runner import sentence_for
from mailbeacon.tray.views.activity.model import Column
from mailbeacon.tray.views.activity.window import ActivityWindow
from mailbeacon.tray.views.compose.templates import Template, TemplateStore
from mailbeacon.tray.views.first_run import FirstRunDialog, MailClientSettings
from mailbeacon.tray.views.settings.dialog import SettingsDialog
from mailbeacon.tray.views.settings.saving import Refused, write_all
from mailbeacon.tray.wiring import ProfileWindows, ask_session_only
from tests.helpers.activity import small_feed

WAIT_MS = 10_000
NOW = datetime(2030, 1, 1, 10, 8, tzinfo=UTC)


@pytest.fixture
def pl() -> Language:
    return Language.load("pl", zone=UTC)


def texts(app: TrayApp) -> dict[str, str]:
    return {key: action.text() for key, action in app.menu.actions_by_key.items()}


def test_the_menu_and_tooltip_switch_language_at_run_time(
    qtbot: QtBot, icons: IconSet, pl: Language
) -> None:
    app = TrayApp(icons, windows=Windows(activity=lambda: None, settings=lambda: None))
    assert texts(app)["activity"] == "&Activity"
    assert texts(app)["quit"] == "&Quit MailBeacon"
    app.set_language(pl)
    shown = texts(app)
    assert shown["activity"] == "&Aktywność"
    assert shown["settings"] == "&Ustawienia…"
    assert shown["quit"] == "Za&kończ MailBeacon"
    assert shown["pause_hour"] == "Na 1 &godzinę"
    assert app.menu.pause_menu.title() == "&Wstrzymaj powiadomienia"
    assert app.tray.tooltip_text().startswith("MailBeacon — Łączenie…")
    app.menu.set_paused("15:30")
    assert app.menu.pause_menu.title() == "&Wstrzymano do 15:30"
    app.set_language(ENGLISH)
    assert texts(app)["activity"] == "&Activity"
    assert app.menu.pause_menu.title() == "&Paused until 15:30"


def test_qt_own_words_and_formats_follow_the_language(qapp: QApplication, pl: Language) -> None:
    qt = QtLanguage(qapp, pl)
    try:
        assert QLocale().name() == "pl_PL"
        assert QLocale().toString(12345) == "12\u00a0345"
        assert QApplication.translate("QPlatformTheme", "Cancel") == "Anuluj"
    finally:
        qt.apply(ENGLISH)
    assert QApplication.translate("QPlatformTheme", "Cancel") == "Cancel"


def test_the_feed_in_polish_with_relative_times_and_plural_forms(
    qtbot: QtBot, store: RecordsStore, pl: Language
) -> None:
    small_feed(store)
    window = ActivityWindow(store, now=lambda: NOW, tr=pl)
    qtbot.addWidget(window)
    window.show()
    model = window.model
    qtbot.waitUntil(lambda: model.total >= 0 and not model.loading, timeout=WAIT_MS)
    assert window.windowTitle() == "Aktywność — MailBeacon"
    header = model.headerData(Column.WHEN, Qt.Orientation.Horizontal)
    assert header == "Kiedy"
    assert window.status.text() == "4 zdarzenia"  # four of the seven count (human, failed)
    whens = [model.index(r, Column.WHEN).data() for r in range(model.rowCount())]
    assert "4 min temu" in whens  # bob's click at 10:04
    assert model.index(0, Column.WHEN).data(Qt.ItemDataRole.ToolTipRole) == (
        "wt. 1 sty 2030, 10:06:00"
    )
    whos = [model.index(r, Column.WHO).data() for r in range(model.rowCount())]
    assert "Ktoś" in whos
    types = {model.index(r, Column.TYPE).data() for r in range(model.rowCount())}
    assert {"Otwarcie", "Kliknięcie", "Niedoręczona"} <= types
    window.shutdown()


def test_the_first_run_dialog_in_polish_keeps_its_english_keys(qtbot: QtBot, pl: Language) -> None:
    settings = MailClientSettings("127.0.0.1", 2525, "mailbeacon", None)
    dialog = FirstRunDialog(settings, tr=pl)
    qtbot.addWidget(dialog)
    assert dialog.windowTitle() == "Konfiguracja programu pocztowego — MailBeacon"
    assert dialog.fields["Connection security"].text() == "Brak (tylko lokalnie)"
    assert dialog.fields["Password"].text() == "(nie ustawiono — zobacz Ustawienia)"
    assert settings.as_text(pl).startswith("Serwer: 127.0.0.1\nPort: 2525\n")


def test_a_language_saved_in_settings_remakes_the_windows_and_tells_the_tray(
    qtbot: QtBot, profile: Profile
) -> None:
    profile.data_dir.mkdir(parents=True)
    windows = ProfileWindows(profile, lambda: None, lambda _m: "250")
    told: list[str] = []
    windows.on_language = lambda language: told.append(language.code)
    try:
        windows.activity.open()
        first = windows.activity.window
        assert first is not None and first.windowTitle() == "Activity — MailBeacon"
        qtbot.addWidget(first)
        windows.settings.open()
        dialog = windows.settings.window
        assert isinstance(dialog, SettingsDialog)
        qtbot.addWidget(dialog)
        combo = dialog.fields["app.language"].widget
        assert isinstance(combo, QComboBox)
        assert [combo.itemText(i) for i in range(combo.count())] == [
            "As the system",
            "English",
            "Polski",
        ]
        combo.setCurrentIndex(combo.findData("pl"))
        dialog.accept()
        assert told == ["pl"]
        again = windows.activity.window
        assert again is not None and again is not first
        qtbot.addWidget(again)
        assert not first.isVisible()
        assert again.isVisible()  # it was open: it opens again, in Polish
        assert again.windowTitle() == "Aktywność — MailBeacon"
    finally:
        windows.close()


def test_the_team_lock_note_and_tooltips_in_a_polish_settings_dialog(
    qtbot: QtBot, profile: Profile, pl: Language
) -> None:
    Settings().save(profile.config_file)
    team = TeamPolicy().with_item("privacy.enabled", "true", enforce=True)
    dialog = SettingsDialog(
        Settings.load(profile.config_file),
        SecretStore("mailbeacon-test"),
        lambda s: s.save(profile.config_file),
        team=team,
        tr=pl,
    )
    qtbot.addWidget(dialog)
    notes = [label.text() for label in dialog.fields["privacy.enabled"].row.findChildren(QLabel)]
    assert "Ustawione przez zespół" in notes
    assert "Set by your team" not in notes
    assert dialog.fields["tracking.clicks"].widget.toolTip() == (
        "przepisuj linki, aby śledzić kliknięcia (tracking.clicks)"
    )


@pytest.mark.expect_log("account set-up failed unexpectedly", "saving the settings failed")
def test_refusals_of_the_tray_modules_in_polish(tmp_path: Path, pl: Language) -> None:
    with pytest.raises(ValueError, match=r"^Szablon musi mieć nazwę\.$"):
        TemplateStore(tmp_path / "templates.json", pl).save(Template(" ", "", ""))
    with pytest.raises(ValueError, match=r"^A template needs a name\.$"):
        TemplateStore(tmp_path / "templates.json").save(Template(" ", "", ""))

    def broken(_settings: Settings) -> None:
        raise OSError("disk full")

    with pytest.raises(
        Refused, match=r"^Nie udało się zapisać ustawień, nic nie zostało zmienione"
    ):
        write_all(SecretStore("mailbeacon-test"), broken, Settings(), {}, pl)
    assert sentence_for(RuntimeError("boom"), pl) == (
        "MailBeacon nie mógł dokończyć tego kroku: boom"
    )


@pytest.mark.expect_log("account set-up failed unexpectedly")
def test_unexpected_failures_are_worded_in_english_by_default() -> None:
    assert sentence_for(RuntimeError("boom")) == "MailBeacon could not finish this step: boom"


def test_the_no_keyring_dialog_in_polish(qtbot: QtBot, pl: Language) -> None:
    def answer() -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        assert box.windowTitle() == "MailBeacon: brak pęku kluczy"
        assert [b.text() for b in box.buttons()] == ["Działaj w tej sesji", "Zakończ"]
        box.buttons()[1].click()

    QTimer.singleShot(0, answer)
    assert ask_session_only("no keyring here", pl) is False


def test_a_device_name_in_a_polish_feed_detail(pl: Language) -> None:
    assert device_label(describe(""), pl) == "nieznane urządzenie"
