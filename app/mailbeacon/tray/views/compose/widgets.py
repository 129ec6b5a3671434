"""The compose window's widgets and the dialogs it asks through (injectable for tests).

Addresses complete from the contacts model (``COMPLETION_ROLE``); the body
editor turns dropped or pasted files into attachments and never loads anything
from the network (a pasted remote image stays a reference); the format toolbar
edits the body (bold, italic, lists, links) and says when lists or links changed,
since that changes which clicks can be tracked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QIdentityProxyModel,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import QAction, QFont, QKeySequence, QTextCharFormat, QTextListFormat
from PySide6.QtWidgets import (
    QCompleter,
    QFileDialog,
    QInputDialog,
    QLineEdit,
    QMessageBox,
    QTextEdit,
    QToolBar,
    QWidget,
)

from mailbeacon.agent.sending.compose_message import split_addresses, split_last
from mailbeacon.core.language import ENGLISH, Language
from mailbeacon.tray.views.compose.document import local_files, toggle_list
from mailbeacon.tray.views.contacts.model import COMPLETION_ROLE
from mailbeacon.tray.views.email_viewer import empty_resource

LINK_SCHEMES = ("http://", "https://", "mailto:")

ChooseFiles = Callable[[QWidget], list[str]]
AskText = Callable[[QWidget, str, str, str], str | None]  # parent, title, label, initial
Confirm = Callable[[QWidget, str], bool]


def choose_files_dialog(parent: QWidget) -> list[str]:
    """Ask for files to attach."""
    paths, _filter = QFileDialog.getOpenFileNames(parent, "Attach files")
    return list(paths)


def ask_text_dialog(parent: QWidget, title: str, label: str, initial: str) -> str | None:
    """Ask for one line of text; None when cancelled."""
    text, ok = QInputDialog.getText(parent, title, label, QLineEdit.EchoMode.Normal, initial)
    return text if ok else None


def confirm_dialog(parent: QWidget, question: str) -> bool:
    """Ask a yes/no question."""
    answer = QMessageBox.question(parent, "MailBeacon", question)
    return answer == QMessageBox.StandardButton.Yes


class CompletionNames(QIdentityProxyModel):
    """The contacts as the completion popup lists them: ``Name <address>`` per row."""

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            role = COMPLETION_ROLE
        return super().data(index, role)


class AddressField(QLineEdit):
    """Addresses separated by commas; the one being typed completes from the contacts."""

    def __init__(self, contacts: QAbstractItemModel | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText("name@example.com, …")
        self.completer_: QCompleter | None = None
        if contacts is not None:
            names = CompletionNames(self)
            names.setSourceModel(contacts)
            completer = QCompleter(names, self)
            completer.setWidget(self)
            completer.setCompletionColumn(0)
            completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
            completer.setFilterMode(Qt.MatchFlag.MatchContains)
            completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
            completer.activated.connect(self.insert_completion)  # the text overload
            self.textEdited.connect(self._complete)
            self.completer_ = completer

    def addresses(self) -> list[str]:
        """The addresses as typed (``Name <a@b>`` or ``a@b``)."""
        return split_addresses(self.text())

    def insert_completion(self, completion: str) -> None:
        """Replace the address being typed with ``completion``."""
        head, _last = split_last(self.text())
        self.setText(f"{head}{completion}, ")

    def _complete(self, text: str) -> None:
        completer = self.completer_
        if completer is None:
            return
        _head, last = split_last(text)
        if len(last) < 1:
            popup = completer.popup()
            if popup is not None:
                popup.hide()
            return
        completer.setCompletionPrefix(last)
        completer.complete()


class RichEditor(QTextEdit):
    """The body editor: rich text in, files dropped onto it become attachments, and
    nothing is ever loaded from the network (a pasted remote image stays a reference)."""

    filesDropped = Signal(list)

    def canInsertFromMimeData(self, source: QMimeData) -> bool:
        return bool(local_files(source)) or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: QMimeData) -> None:
        files = local_files(source)
        if files:
            self.filesDropped.emit(files)
            return
        super().insertFromMimeData(source)

    def loadResource(self, type: int, name: QUrl | str) -> object:
        # Images the rep pasted are document resources already and never get here.
        # Anything else resolves empty: None (or super()) would let Qt load the URL
        # itself, a local file or, on Windows, an SMB share that receives the rep's
        # NTLM hash (email_viewer.py, docs/promises.md#isolation).
        return empty_resource(type)


class FormatToolbar(QToolBar):
    """Bold, italic, bulleted and numbered lists, and links for one editor.

    ``ask_link()`` asks for a web address (None: cancelled). Signal:
    ``bodyChanged()`` after a list or link changed the body.
    """

    bodyChanged = Signal()

    def __init__(
        self, editor: QTextEdit, ask_link: Callable[[], str | None],
        parent: QWidget | None = None, tr: Language = ENGLISH,
    ) -> None:
        super().__init__(tr.t("Format"), parent)
        self._editor = editor
        self._ask_link = ask_link
        self.bold_action = self._toggle(tr.t("Bold"), QKeySequence.StandardKey.Bold,
                                        self.set_bold)
        self.italic_action = self._toggle(
            tr.t("Italic"), QKeySequence.StandardKey.Italic, self.set_italic
        )
        bold_font = self.bold_action.font()
        bold_font.setBold(True)
        self.bold_action.setFont(bold_font)
        italic_font = self.italic_action.font()
        italic_font.setItalic(True)
        self.italic_action.setFont(italic_font)
        self.addSeparator()
        self.bullets_action = self.addAction(tr.t("• List"))
        self.bullets_action.triggered.connect(
            lambda: self.toggle_list(QTextListFormat.Style.ListDisc)
        )
        self.numbers_action = self.addAction(tr.t("1. List"))
        self.numbers_action.triggered.connect(
            lambda: self.toggle_list(QTextListFormat.Style.ListDecimal)
        )
        self.addSeparator()
        self.link_action = self.addAction(tr.t("Link…"))
        self.link_action.setShortcut(QKeySequence("Ctrl+K"))
        self.link_action.triggered.connect(self._link_clicked)
        editor.currentCharFormatChanged.connect(self._format_changed)

    def set_bold(self, on: bool) -> None:
        """Bold on or off for the selection (or what is typed next)."""
        fmt = QTextCharFormat()
        fmt.setFontWeight(QFont.Weight.Bold if on else QFont.Weight.Normal)
        self._editor.mergeCurrentCharFormat(fmt)

    def set_italic(self, on: bool) -> None:
        """Italic on or off for the selection (or what is typed next)."""
        fmt = QTextCharFormat()
        fmt.setFontItalic(on)
        self._editor.mergeCurrentCharFormat(fmt)

    def toggle_list(self, style: QTextListFormat.Style) -> None:
        """Make the selected paragraphs a list of ``style`` (joining a list of that style
        just above), or plain paragraphs again when they already are one."""
        toggle_list(self._editor.textCursor(), style)
        self.bodyChanged.emit()

    def insert_link(self, url: str, text: str = "") -> None:
        """Link the selection (or insert ``text``, else the URL itself) to ``url``."""
        url = url.strip()
        if not url.lower().startswith(LINK_SCHEMES):
            url = "https://" + url
        cursor = self._editor.textCursor()
        fmt = QTextCharFormat()
        fmt.setAnchor(True)
        fmt.setAnchorHref(url)
        fmt.setFontUnderline(True)
        fmt.setForeground(self._editor.palette().link())
        if cursor.hasSelection():
            cursor.mergeCharFormat(fmt)
        else:
            cursor.insertText(text or url, fmt)
            cursor.setCharFormat(QTextCharFormat())
            self._editor.setTextCursor(cursor)
        self.bodyChanged.emit()

    def _toggle(
        self, text: str, key: QKeySequence.StandardKey, slot: Callable[[bool], None]
    ) -> QAction:
        action = self.addAction(text)
        action.setCheckable(True)
        action.setShortcut(QKeySequence(key))
        action.toggled.connect(slot)
        return action

    def _link_clicked(self) -> None:
        url = self._ask_link()
        if url and url.strip() not in ("", "https://", "http://"):
            self.insert_link(url)

    def _format_changed(self, fmt: QTextCharFormat) -> None:
        for action, on in (
            (self.bold_action, fmt.fontWeight() >= QFont.Weight.Bold.value),
            (self.italic_action, fmt.fontItalic()),
        ):
            action.blockSignals(True)
            action.setChecked(on)
            action.blockSignals(False)
