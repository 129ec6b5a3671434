"""Why the settings dialog refuses a value, in the rep's language (issue 19): the
settings word each refusal once (English for `mailbeacon config set` and the log), and
the dialog shows it in Polish beside the field; what the rep typed stays as typed."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot

from mailbeacon.agent.settings.errors import SettingError
from mailbeacon.agent.settings.secrets import SecretStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.language import Language, in_language
from mailbeacon.tray.views.settings.dialog import SettingsDialog
from mailbeacon.tray.views.settings.saving import checked_settings


@pytest.fixture
def pl() -> Language:
    return Language.load("pl")


def test_the_command_line_keeps_english_and_the_dialog_gets_polish(pl: Language) -> None:
    with pytest.raises(SettingError) as refused:
        Settings().set("upstream.url", "ftp://mail.firma.pl")
    assert str(refused.value) == (
        "upstream.url: the URL must start with smtp://, smtp+starttls://, smtps://, not "
        "'ftp://mail.firma.pl'"
    )
    _trial, errors = checked_settings(Settings(), {"upstream.url": "ftp://mail.firma.pl"})
    assert in_language(errors["upstream.url"], pl) == (
        "adres URL musi zaczynać się od smtp://, smtp+starttls://, smtps://, a nie "
        "'ftp://mail.firma.pl'"
    )


def test_the_dialog_says_why_in_polish(
    qtbot: QtBot, pl: Language, tmp_path: Path, memory_keyring: object
) -> None:
    dialog = SettingsDialog(
        Settings(), SecretStore("mailbeacon-test"), lambda s: s.save(tmp_path / "c.json"), tr=pl
    )
    qtbot.addWidget(dialog)
    dialog.show()
    url = dialog.fields["upstream.url"].widget
    assert isinstance(url, QLineEdit)
    url.setText("smtp://mail.lan.firma.pl")
    dialog.accept()
    shown = dialog.fields["upstream.url"].error.text()
    assert shown.startswith("smtp://mail.lan.firma.pl nie jest szyfrowany i nie działa na tym")
    assert "Użyj smtp+starttls:// lub smtps://" in shown
