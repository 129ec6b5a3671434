"""Renders the settings dialog under a team policy (issue 16) offscreen to PNG:
``settings_team_locked.png``, the Tracking tab with what the team enforces locked and
marked "Set by your team". The console's pages are photographed by the browser test
(tests/e2e/test_admin_console.py) into the same folder.

Usage: ``.venv/bin/python packaging/screenshot_team.py [--lang en|pl] OUTDIR`` (the
Polish one goes to ``packaging/screenshots/pl``).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Importing the module first sets the offscreen platform and TZ, before Qt loads.
import screenshots
from PySide6.QtWidgets import QApplication, QScrollArea

from mailbeacon.agent.settings.secrets import SecretStore
from mailbeacon.core.language import LANGUAGES, Language
from mailbeacon.core.policy import TeamPolicy
from mailbeacon.tray.views.settings.dialog import SettingsDialog

TEAM = (
    TeamPolicy()
    .with_item("privacy.enabled", "true", enforce=True)
    .with_item("privacy.truncate_ip", "true", enforce=True)
    .with_item("tracking.clicks", "false", enforce=True)
    .with_item("defaults.log", "true", enforce=False)
)


def main(argv: list[str]) -> int:
    """Render into the folder given (``--lang pl``: in Polish)."""
    code = "en"
    if len(argv) == 3 and argv[0] == "--lang" and argv[1] in LANGUAGES:
        code, argv = argv[1], argv[2:]
    if len(argv) != 1:
        print("usage: screenshot_team.py [--lang en|pl] OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    tr = Language.load(code)
    qt_language = screenshots.QtLanguage(app, tr)  # Qt's own buttons in the same language
    dialog = SettingsDialog(
        screenshots.sample_settings(), SecretStore("mailbeacon-screenshots"),
        lambda _settings: None, open_account=lambda: None, team=TEAM, tr=tr,
    )  # fmt: skip
    dialog.show_field("tracking.clicks")
    dialog.resize(dialog.sizeHint().width(), dialog.sizeHint().height() + 120)
    dialog.show()
    area = dialog.tabs.currentWidget()
    if isinstance(area, QScrollArea):
        QApplication.processEvents()
        area.ensureWidgetVisible(dialog.fields["privacy.enabled"].widget)
    screenshots._save(dialog, out / "settings_team_locked.png")
    screenshots._dispose(dialog)
    del qt_language, app
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
