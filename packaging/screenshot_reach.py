"""Renders the first-run step "How will your recipients reach tracking?" (issue 20)
offscreen to PNG.

Usage: ``.venv/bin/python packaging/screenshot_reach.py OUTDIR`` (the committed
pictures live in ``packaging/screenshots/``). Writes ``first_run_reach.png``: the
step as the first-run dialog shows it after the account flow, with "My team has a
tracking server" chosen. Kept apart from ``screenshots.py`` so the two can change
independently; it reuses that module's offscreen set-up and saving. Nothing is
saved: the step's save does nothing here.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Importing the module first sets the offscreen platform and TZ, before Qt loads.
import screenshots
from PySide6.QtWidgets import QApplication, QDialog, QVBoxLayout

from mailbeacon.core.language import LANGUAGES, Language
from mailbeacon.tray.language import QtLanguage
from mailbeacon.tray.views.reach import TEAM, ReachStep


def first_run_reach(out: Path, tr: Language) -> None:
    """The step in a window of its own, as the first-run dialog frames it."""
    dialog = QDialog()
    dialog.setWindowTitle(tr.t("Tracking — MailBeacon"))
    step = ReachStep(lambda _link: None, tr=tr)
    QVBoxLayout(dialog).addWidget(step)
    step.choose(TEAM)
    screenshots._save(dialog, out / "first_run_reach.png", fit=True)
    screenshots._dispose(dialog)


def main(argv: list[str]) -> int:
    """Render into the folder given (``--lang pl``: in Polish)."""
    code = "en"
    if len(argv) == 3 and argv[0] == "--lang" and argv[1] in LANGUAGES:
        code, argv = argv[1], argv[2:]
    if len(argv) != 1:
        print("usage: screenshot_reach.py [--lang en|pl] OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    tr = Language.load(code)
    qt_language = QtLanguage(app, tr)
    first_run_reach(out, tr)
    del qt_language, app
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
