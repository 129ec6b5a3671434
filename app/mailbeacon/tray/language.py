"""The rep's language in Qt: Qt's own words (standard buttons such as Cancel and Close,
context menus of text boxes) and Qt's locale (the formats of Qt's date and number
widgets) follow the same :class:`~mailbeacon.core.language.Language` as our catalogs.

Qt ships its translations as ``qtbase_<code>.qm`` (the bundle keeps those of the
languages MailBeacon speaks); a missing one leaves Qt's words English, never an error.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QTranslator

from mailbeacon.core.language import SOURCE, Language

log = logging.getLogger(__name__)


class QtLanguage:
    """Installs (and swaps) Qt's translator and default locale for one application."""

    def __init__(self, app: QCoreApplication, tr: Language) -> None:
        self._app = app
        self._translator: QTranslator | None = None
        self.apply(tr)

    def apply(self, tr: Language) -> None:
        """Qt's words and formats in ``tr``'s language from now on."""
        QLocale.setDefault(QLocale(str(tr.locale)))
        if self._translator is not None:
            self._app.removeTranslator(self._translator)
            self._translator = None
        if tr.code == SOURCE:
            return
        translator = QTranslator(self._app)
        folder = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
        if translator.load(f"qtbase_{tr.code}", folder):
            self._app.installTranslator(translator)
            self._translator = translator
        else:
            log.info(
                "Qt has no %s translation in %s: its own buttons stay English", tr.code, folder
            )
