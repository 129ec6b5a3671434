"""Renders the sent email's own view (issue 20) offscreen to PNG, with the sample data
of ``packaging/screenshots.py``.

Usage: ``.venv/bin/python packaging/screenshot_email_view.py OUTDIR`` (the committed
pictures live in ``packaging/screenshots/``). Writes ``email_view.png`` (a proposal to
two people: opens, a click, a reply, an Apple proxy open under Details) and
``email_view_bounce.png`` (an invitation one address of which bounced, with "Correct
the address and resend"). The window's "now" is the sample's, so the relative times
read as they would on that day. Kept apart from ``screenshots.py`` so the two can
change independently; it reuses that module's sample data, waiting and saving.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

# Importing the module first sets the offscreen platform and TZ, before Qt loads.
import screenshots
from PySide6.QtWidgets import QApplication

from mailbeacon.core.language import LANGUAGES, Language
from mailbeacon.tray.language import QtLanguage
from mailbeacon.tray.views.email.window import EmailWindow

PICTURES = {
    "email_view.png": "Proposal: website redesign for Whitfield & Partners",
    "email_view_bounce.png": "Invitation: product demo on Thursday",
}


def email_view(out: Path, data: screenshots.Sample, tr: Language) -> None:
    """Each picture's email, as a notification click opens it."""
    store = data.store
    by_subject: dict[str, int] = {}
    email_id = 1
    while (email := store.email(email_id)) is not None:  # the sample holds a handful
        by_subject[email.subject] = email_id
        email_id += 1
    for name, subject in PICTURES.items():
        window = EmailWindow(store, by_subject[subject], compose=lambda _fill: None,
                             clock=lambda: screenshots.NOW, tr=tr)
        window.show()
        screenshots.wait_until(lambda w=window: w.view is not None,  # type: ignore[misc]
                               (window.loaded, window.loadFailed), f"the email “{subject}”")
        # The picture shows what Details holds, when it holds anything.
        window.details_button.setChecked(window.details_button.isEnabled())
        screenshots._save(window, out / name)
        screenshots._dispose(window)


def main(argv: list[str]) -> int:
    """Render into the folder given (``--lang pl``: in Polish)."""
    code = "en"
    if len(argv) == 3 and argv[0] == "--lang" and argv[1] in LANGUAGES:
        code, argv = argv[1], argv[2:]
    if len(argv) != 1:
        print("usage: screenshot_email_view.py [--lang en|pl] OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    tr = Language.load(code)
    qt_language = QtLanguage(app, tr)
    with tempfile.TemporaryDirectory(prefix="mailbeacon-screenshots-") as root, \
            screenshots.sample(Path(root)) as data:
        email_view(out, data, tr)
    del qt_language, app
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
