"""The compose window: write a tracked (and/or logged) email and send it from the tray.

The message takes the same path as one from the rep's mail client: the window
builds RFC 5322 bytes (``agent.compose_message``) and hands an
``IncomingMessage`` to ``send`` (the agent's ``Sender.accept``, wrapped by the
caller to be callable from any thread), which mints a fresh pixel and fresh
tracked links for this one message, records it and queues it durably. ``send``
runs on a ``Worker`` thread; it may return the queue id or an awaitable of it.

Track and Log start from the rep's defaults and are sent as explicit overrides.
A note under them says what will be tracked: nothing (Track off), opens only
(click tracking off in Settings, or no link that can be tracked), or opens and
the links' clicks.

Templates (``tray.templates``): placeholders ``{first_name}``, ``{last_name}``,
``{company}`` and ``{email}`` are filled from the first To recipient's contact
record when a template is used, and any left in the subject or body are filled
again at send time; a placeholder with no value stops the send with a message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QIdentityProxyModel,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QFont,
    QKeySequence,
    QTextBlock,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextListFormat,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QTextEdit,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.agent.records.model import Contact
from mailbeacon.agent.sending.compose_message import (
    Draft,
    DraftError,
    OutgoingAttachment,
    build_message,
    check_draft,
    envelope_recipients,
    guess_content_type,
    parse_address,
    split_addresses,
    split_last,
)
from mailbeacon.agent.sending.relay import IncomingMessage
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.html_links import plan_html
from mailbeacon.tray.threads.workers import Worker
from mailbeacon.tray.views.compose.templates import (
    Template,
    TemplateStore,
    fill,
    placeholder_values,
    unfilled,
)
from mailbeacon.tray.views.contacts.model import COMPLETION_ROLE

log = logging.getLogger(__name__)

Send = Callable[[IncomingMessage], Awaitable[str] | str]
ContactLookup = Callable[[str], Contact | None]
ChooseFiles = Callable[[QWidget], list[str]]
AskText = Callable[[QWidget, str, str, str], str | None]  # parent, title, label, initial
Confirm = Callable[[QWidget, str], bool]

ERROR_STYLE = "color: #b00020;"
NOTE_STYLE = "color: palette(mid);"
LINK_NOTE_DELAY_MS = 300
LARGE_ATTACHMENTS = 25 * 1024 * 1024  # many providers refuse larger messages
LINK_SCHEMES = ("http://", "https://", "mailto:")


@dataclass(frozen=True, slots=True)
class ComposeDefaults:
    """What a new email starts with."""

    sender: str = ""
    track: bool = True
    log: bool = False
    clicks: bool = True  # settings tracking.clicks

    @classmethod
    def from_settings(cls, settings: Settings, sender: str) -> ComposeDefaults:
        """Track and Log defaults and click tracking from the rep's settings."""
        return cls(sender, settings.defaults.track, settings.defaults.log,
                   settings.tracking.clicks)


# ---------------------------------------------------------------- dialogs (injectable)


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


# ---------------------------------------------------------------- document helpers


def local_files(mime: QMimeData) -> list[str]:
    """The local file paths a drop or paste carries."""
    if not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]


def document_text(document: QTextDocument) -> str:
    """The plain-text alternative: list items marked, a link's address after its text."""
    lines: list[str] = []
    block = document.begin()
    while block.isValid():
        prefix = ""
        text_list = block.textList()
        if text_list is not None:
            style = text_list.format().style()
            numbered = style in (
                QTextListFormat.Style.ListDecimal,
                QTextListFormat.Style.ListLowerAlpha,
                QTextListFormat.Style.ListUpperAlpha,
                QTextListFormat.Style.ListLowerRoman,
                QTextListFormat.Style.ListUpperRoman,
            )
            marker = f"{text_list.itemNumber(block) + 1}. " if numbered else "- "
            prefix = "  " * max(0, text_list.format().indent() - 1) + marker
        lines.append(prefix + _block_text(block))
        block = block.next()
    text = "\n".join(lines).replace("\u2028", "\n").replace("\ufffc", "")
    return text.strip("\n") + "\n"


def _selected_blocks(cursor: QTextCursor) -> list[QTextBlock]:
    """The blocks the cursor's selection touches (the cursor's block without one)."""
    document = cursor.document()
    block = document.findBlock(cursor.selectionStart())
    last = document.findBlock(cursor.selectionEnd())
    blocks = [block]
    while block.isValid() and block != last:  # bounded by the document's blocks
        block = block.next()
        if block.isValid():
            blocks.append(block)
    return blocks


def _block_text(block: QTextBlock) -> str:
    parts: list[str] = []
    href, anchor_text = "", ""

    def flush() -> None:
        if href and href.removeprefix("mailto:") not in anchor_text:
            parts.append(f" ({href})")

    it = block.begin()
    while not it.atEnd():
        fragment = it.fragment()
        if fragment.isValid():
            fmt = fragment.charFormat()
            this_href = fmt.anchorHref() if fmt.isAnchor() else ""
            if this_href != href:
                flush()
                href, anchor_text = this_href, ""
            parts.append(fragment.text())
            anchor_text += fragment.text()
        it += 1
    flush()
    return "".join(parts)


_QT_META = re.compile(r'<meta name="qrichtext" content="1" ?/?>')
_BODY_STYLE = re.compile(r'<body style="[^"]*">')


def email_html(document: QTextDocument) -> str:
    """The HTML to send: Qt's, without its editor marker and the editor's own font,
    so the recipient's mail client shows its usual font."""
    html = _QT_META.sub("", document.toHtml(), count=1)
    return _BODY_STYLE.sub("<body>", html, count=1)


def trackable_links(html: str) -> tuple[int, int]:
    """(links whose clicks can be tracked, web links in all) per rule 2."""
    plan = plan_html(html, track=True, clicks=True)
    total = len(re.findall(r"<a\s[^>]*href=\"https?://", html, flags=re.IGNORECASE))
    return len(plan.links), max(total, len(plan.links))


def click_note(track: bool, clicks_enabled: bool, trackable: int, total: int) -> str:
    """What will be tracked, in words."""
    if not track:
        return "Track is off: neither opens nor clicks of this email are tracked."
    if not clicks_enabled:
        return "Opens are tracked. Clicks are not: click tracking is off in Settings."
    if trackable == 0:
        if total:
            return ("Opens are tracked. Clicks are not: links that show their own web "
                    "address are left as they are.")
        return "Opens are tracked. There is no link whose clicks could be tracked."
    note = f"Opens and clicks on {trackable} link{'' if trackable == 1 else 's'} are tracked."
    if total > trackable:
        note += " Links that show their own web address are left as they are."
    return note


def _size_text(size: int) -> str:
    if size < 1024 * 1024:
        return f"{max(1, round(size / 1024))} KB"
    return f"{size / (1024 * 1024):.1f} MB"


# ---------------------------------------------------------------- widgets


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
        url = QUrl(name) if isinstance(name, str) else name
        if url.scheme().lower() in ("data", "qrc", ""):
            return super().loadResource(type, url)
        return None


# ---------------------------------------------------------------- the window


class ComposeWindow(QWidget):
    """Write and send one email.

    Signals: ``sent(str queue_id)`` once the agent queued it (the window then
    closes); ``sendFailed(str message)`` (also shown in the window);
    ``templatesChanged()`` after a template was saved or deleted; ``closed()``.
    """

    sent = Signal(str)
    sendFailed = Signal(str)
    templatesChanged = Signal()
    closed = Signal()

    def __init__(
        self,
        send: Send,
        *,
        defaults: ComposeDefaults | None = None,
        contacts: QAbstractItemModel | None = None,
        lookup_contact: ContactLookup | None = None,
        templates: TemplateStore | None = None,
        worker: Worker | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        choose_files: ChooseFiles = choose_files_dialog,
        ask_text: AskText = ask_text_dialog,
        confirm: Confirm = confirm_dialog,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._send = send
        self.defaults = defaults or ComposeDefaults()
        self._lookup = lookup_contact
        self._templates = templates
        self._worker = worker or Worker(1, self)
        self._clock = clock
        self._choose_files = choose_files
        self._ask_text = ask_text
        self._confirm = confirm
        self._sending = False
        self._done = False
        self.template_list: list[Template] = []
        self.attachment_paths: list[Path] = []
        self.setWindowTitle("New email — MailBeacon")
        self.resize(820, 680)
        self.setAcceptDrops(True)
        self._build(contacts)
        self.toolbar = self._format_toolbar()
        self._lay_out()
        self._note_timer = QTimer(self)
        self._note_timer.setSingleShot(True)
        self._note_timer.setInterval(LINK_NOTE_DELAY_MS)
        self._connect()
        self.update_click_note()
        self._update_buttons()
        self.reload_templates()

    def _build(self, contacts: QAbstractItemModel | None) -> None:
        self.from_edit = QLineEdit(self.defaults.sender)
        self.from_edit.setPlaceholderText("you@example.com")
        self.to_edit = AddressField(contacts)
        self.cc_edit = AddressField(contacts)
        self.bcc_edit = AddressField(contacts)
        self.subject_edit = QLineEdit()
        self.editor = RichEditor()
        self.editor.setAcceptRichText(True)
        self.track_box = QCheckBox("Trac&k opens and clicks")
        self.track_box.setChecked(self.defaults.track)
        self.log_box = QCheckBox("&Log a copy on the contacts' records")
        self.log_box.setChecked(self.defaults.log)
        self.click_label = QLabel()
        self.click_label.setTextFormat(Qt.TextFormat.PlainText)
        self.click_label.setWordWrap(True)
        self.attachment_list = QListWidget()
        self.attachment_list.setMaximumHeight(72)
        self.attach_button = QPushButton("&Attach…")
        self.remove_button = QPushButton("Remo&ve")
        self.attachment_note = QLabel()
        self.attachment_note.setTextFormat(Qt.TextFormat.PlainText)
        self.template_box = QComboBox()
        self.template_box.setMinimumContentsLength(18)
        self.use_template_button = QPushButton("Us&e")
        self.save_template_button = QPushButton("Save as te&mplate…")
        self.delete_template_button = QPushButton("&Delete")
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        self.send_button = QPushButton("&Send")
        self.send_button.setDefault(True)

    def _connect(self) -> None:
        self._note_timer.timeout.connect(self.update_click_note)
        self.editor.textChanged.connect(self._note_timer.start)
        self.track_box.toggled.connect(lambda _on: self.update_click_note())
        self.editor.filesDropped.connect(self.add_attachments)
        self.editor.currentCharFormatChanged.connect(self._format_changed)
        self.attach_button.clicked.connect(self._attach_clicked)
        self.remove_button.clicked.connect(self.remove_selected_attachment)
        self.attachment_list.currentRowChanged.connect(self._update_buttons)
        self.use_template_button.clicked.connect(self.use_selected_template)
        self.save_template_button.clicked.connect(self.save_as_template)
        self.delete_template_button.clicked.connect(self.delete_selected_template)
        self.send_button.clicked.connect(self.send)

    # ------------------------------------------------------------ layout

    def _lay_out(self) -> None:
        form = QFormLayout()
        form.addRow("&From:", self.from_edit)
        form.addRow("&To:", self.to_edit)
        form.addRow("&Cc:", self.cc_edit)
        form.addRow("&Bcc:", self.bcc_edit)
        form.addRow("S&ubject:", self.subject_edit)
        self.template_row = QWidget()
        templates = QHBoxLayout(self.template_row)
        templates.setContentsMargins(0, 0, 0, 0)
        templates.addWidget(QLabel("Template:"))
        templates.addWidget(self.template_box, 1)
        templates.addWidget(self.use_template_button)
        templates.addWidget(self.save_template_button)
        templates.addWidget(self.delete_template_button)
        self.template_row.setVisible(self._templates is not None)
        attachments = QHBoxLayout()
        attachments.addWidget(self.attachment_list, 1)
        attachment_buttons = QVBoxLayout()
        attachment_buttons.addWidget(self.attach_button)
        attachment_buttons.addWidget(self.remove_button)
        attachment_buttons.addStretch(1)
        attachments.addLayout(attachment_buttons)
        options = QHBoxLayout()
        options.addWidget(self.track_box)
        options.addWidget(self.log_box)
        options.addStretch(1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.template_row)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.editor, 1)
        layout.addWidget(QLabel("Attachments (drop files here):"))
        layout.addLayout(attachments)
        layout.addWidget(self.attachment_note)
        layout.addLayout(options)
        layout.addWidget(self.click_label)
        layout.addLayout(bottom)

    def _format_toolbar(self) -> QToolBar:
        bar = QToolBar("Format")
        self.bold_action = self._action(bar, "Bold", QKeySequence.StandardKey.Bold, self.set_bold)
        self.italic_action = self._action(
            bar, "Italic", QKeySequence.StandardKey.Italic, self.set_italic
        )
        bold_font = self.bold_action.font()
        bold_font.setBold(True)
        self.bold_action.setFont(bold_font)
        italic_font = self.italic_action.font()
        italic_font.setItalic(True)
        self.italic_action.setFont(italic_font)
        bar.addSeparator()
        self.bullets_action = bar.addAction("• List")
        self.bullets_action.triggered.connect(
            lambda: self.toggle_list(QTextListFormat.Style.ListDisc)
        )
        self.numbers_action = bar.addAction("1. List")
        self.numbers_action.triggered.connect(
            lambda: self.toggle_list(QTextListFormat.Style.ListDecimal)
        )
        bar.addSeparator()
        self.link_action = bar.addAction("Link…")
        self.link_action.setShortcut(QKeySequence("Ctrl+K"))
        self.link_action.triggered.connect(self._link_clicked)
        return bar

    def _action(
        self, bar: QToolBar, text: str, key: QKeySequence.StandardKey,
        slot: Callable[[bool], None],
    ) -> QAction:
        action = bar.addAction(text)
        action.setCheckable(True)
        action.setShortcut(QKeySequence(key))
        action.toggled.connect(slot)
        return action

    # ------------------------------------------------------------ formatting

    def set_bold(self, on: bool) -> None:
        """Bold on or off for the selection (or what is typed next)."""
        fmt = QTextCharFormat()
        fmt.setFontWeight(QFont.Weight.Bold if on else QFont.Weight.Normal)
        self.editor.mergeCurrentCharFormat(fmt)

    def set_italic(self, on: bool) -> None:
        """Italic on or off for the selection (or what is typed next)."""
        fmt = QTextCharFormat()
        fmt.setFontItalic(on)
        self.editor.mergeCurrentCharFormat(fmt)

    def toggle_list(self, style: QTextListFormat.Style) -> None:
        """Make the selected paragraphs a list of ``style`` (joining a list of that style
        just above), or plain paragraphs again when they already are one."""
        cursor = self.editor.textCursor()
        current = cursor.currentList()
        cursor.beginEditBlock()
        if current is not None and current.format().style() == style:
            for block in _selected_blocks(cursor):
                text_list = block.textList()
                if text_list is not None:
                    text_list.remove(block)
                block_cursor = QTextCursor(block)
                block_format = block_cursor.blockFormat()
                block_format.setIndent(0)
                block_cursor.setBlockFormat(block_format)
        else:
            above = QTextCursor(self.editor.document())
            above.setPosition(cursor.selectionStart())
            previous = above.block().previous()
            joined = previous.textList() if previous.isValid() else None
            if joined is not None and joined.format().style() == style:
                for block in _selected_blocks(cursor):
                    if block.textList() is not None:
                        block.textList().remove(block)
                    joined.add(block)
            else:
                list_format = QTextListFormat()
                list_format.setStyle(style)
                cursor.createList(list_format)
        cursor.endEditBlock()
        self.update_click_note()

    def insert_link(self, url: str, text: str = "") -> None:
        """Link the selection (or insert ``text``, else the URL itself) to ``url``."""
        url = url.strip()
        if not url.lower().startswith(LINK_SCHEMES):
            url = "https://" + url
        cursor = self.editor.textCursor()
        fmt = QTextCharFormat()
        fmt.setAnchor(True)
        fmt.setAnchorHref(url)
        fmt.setFontUnderline(True)
        fmt.setForeground(self.palette().link())
        if cursor.hasSelection():
            cursor.mergeCharFormat(fmt)
        else:
            cursor.insertText(text or url, fmt)
            cursor.setCharFormat(QTextCharFormat())
            self.editor.setTextCursor(cursor)
        self.update_click_note()

    def _link_clicked(self) -> None:
        url = self._ask_text(self, "Insert link", "Web address:", "https://")
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

    # ------------------------------------------------------------ tracking note

    def update_click_note(self) -> None:
        """Say what will be tracked for the body as it is now."""
        self._note_timer.stop()
        trackable, total = trackable_links(email_html(self.editor.document()))
        self.click_label.setText(
            click_note(self.track_box.isChecked(), self.defaults.clicks, trackable, total)
        )

    # ------------------------------------------------------------ attachments

    def add_attachments(self, paths: Sequence[str | Path]) -> None:
        """Attach files (folders and unreadable paths are refused with a message)."""
        refused: list[str] = []
        for raw in paths:
            path = Path(raw)
            try:
                size = path.stat().st_size
            except OSError:
                refused.append(path.name or str(path))
                continue
            if not path.is_file():
                refused.append(path.name or str(path))
                continue
            self.attachment_paths.append(path)
            item = QListWidgetItem(f"{path.name}  ({_size_text(size)})")
            item.setToolTip(str(path).replace("<", "&lt;"))
            self.attachment_list.addItem(item)
        if refused:
            self._set_status("Not attached (not a readable file): " + ", ".join(refused), True)
        self._update_attachment_note()
        self._update_buttons()

    def remove_selected_attachment(self) -> None:
        """Remove the attachment selected in the list."""
        row = self.attachment_list.currentRow()
        if 0 <= row < len(self.attachment_paths):
            del self.attachment_paths[row]
            self.attachment_list.takeItem(row)
        self._update_attachment_note()
        self._update_buttons()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        files = local_files(event.mimeData())
        if files:
            self.add_attachments(files)
            event.acceptProposedAction()
        else:
            super().dropEvent(event)

    def _attach_clicked(self) -> None:
        self.add_attachments(self._choose_files(self))

    def _update_attachment_note(self) -> None:
        total = 0
        for path in self.attachment_paths:
            try:
                total += path.stat().st_size
            except OSError:
                continue
        if total > LARGE_ATTACHMENTS:
            self.attachment_note.setText(
                f"Attachments total {_size_text(total)}: many mail servers refuse messages "
                "over 25 MB."
            )
        else:
            self.attachment_note.setText("")
        self.attachment_note.setVisible(bool(self.attachment_note.text()))

    # ------------------------------------------------------------ templates

    def reload_templates(self) -> None:
        """Read the stored templates into the list."""
        store = self._templates
        if store is None:
            self._show_templates([])
            return
        self._worker.submit(
            store.load,
            self._show_templates,
            lambda error: self._set_status(f"Templates could not be read: {error}", True),
        )

    def selected_template(self) -> Template | None:
        """The template chosen in the list."""
        index = self.template_box.currentIndex()
        return self.template_list[index] if 0 <= index < len(self.template_list) else None

    def use_selected_template(self) -> None:
        """Put the chosen template's subject and body in, filled for the first To recipient."""
        template = self.selected_template()
        if template is None:
            return
        name, address = self._first_to() or ("", "")
        lookup = self._lookup
        if not address or lookup is None:
            self._apply_template(template, placeholder_values(address, None, name))
            return
        self._worker.submit(
            lambda: placeholder_values(address, lookup(address), name),
            lambda values: self._apply_template(template, values),
            lambda error: self._set_status(f"The contact could not be read: {error}", True),
        )

    def save_as_template(self) -> None:
        """Store the subject and body as a template (tracking removed)."""
        store = self._templates
        if store is None:
            return
        current = self.selected_template()
        name = self._ask_text(self, "Save as template", "Template name:",
                              current.name if current else self.subject_edit.text())
        if not name or not name.strip():
            return
        template = Template(name.strip(), self.subject_edit.text(), self.editor.toHtml())
        self._worker.submit(
            lambda: store.save(template),
            self._template_saved,
            lambda error: self._set_status(f"The template was not saved: {error}", True),
        )

    def delete_selected_template(self) -> None:
        """Delete the chosen template after asking."""
        store, template = self._templates, self.selected_template()
        if store is None or template is None:
            return
        if not self._confirm(self, f"Delete the template “{template.name}”?"):
            return
        self._worker.submit(
            lambda: store.delete(template.name),
            lambda _deleted: self._templates_changed(None),
            lambda error: self._set_status(f"The template was not deleted: {error}", True),
        )

    def _show_templates(self, templates: list[Template], select: str | None = None) -> None:
        self.template_list = list(templates)
        self.template_box.clear()
        for template in templates:
            self.template_box.addItem(template.name)
        if select is not None:
            names = [t.name for t in templates]
            if select in names:
                self.template_box.setCurrentIndex(names.index(select))
        has = bool(templates)
        self.template_box.setEnabled(has)
        self.use_template_button.setEnabled(has)
        self.delete_template_button.setEnabled(has)
        self.save_template_button.setEnabled(self._templates is not None)

    def _template_saved(self, template: Template) -> None:
        self._set_status(f"Saved the template “{template.name}”.")
        self._templates_changed(template.name)

    def _templates_changed(self, select: str | None) -> None:
        store = self._templates
        if store is None:
            return
        self._worker.submit(
            store.load,
            lambda templates: self._templates_reloaded(templates, select),
            lambda error: self._set_status(f"Templates could not be read: {error}", True),
        )

    def _templates_reloaded(self, templates: list[Template], select: str | None) -> None:
        self._show_templates(templates, select)
        self.templatesChanged.emit()

    def _apply_template(self, template: Template, values: dict[str, str | None]) -> None:
        self.subject_edit.setText(fill(template.subject, values))
        self.editor.setHtml(fill(template.html, values, as_html=True))
        left = unfilled(self.subject_edit.text(), self.editor.toPlainText())
        if left:
            self._set_status(
                "To fill in: " + ", ".join(left)
                + " (filled from the first To recipient's contact when you send)."
            )
        else:
            self._set_status(f"Used the template “{template.name}”.")
        self.update_click_note()

    def _first_to(self) -> tuple[str, str] | None:
        for item in self.to_edit.addresses():
            try:
                return parse_address(item)
            except DraftError:
                continue
        return None

    # ------------------------------------------------------------ sending

    def draft(self) -> Draft:
        """The email as written (attachments not read yet)."""
        return Draft(
            sender=self.from_edit.text().strip(),
            to=tuple(self.to_edit.addresses()),
            cc=tuple(self.cc_edit.addresses()),
            bcc=tuple(self.bcc_edit.addresses()),
            subject=self.subject_edit.text(),
            html=email_html(self.editor.document()),
            text=document_text(self.editor.document()),
        )

    def send(self) -> None:
        """Check the email, then build and send it off the UI thread."""
        if self._sending:
            return
        draft = self.draft()
        try:
            check_draft(draft)
        except DraftError as exc:
            self._set_status(str(exc), True)
            return
        job = _SendJob(draft, tuple(self.attachment_paths), self.track_box.isChecked(),
                       self.log_box.isChecked(), self._lookup, self._clock, self._send)
        self._set_sending(True)
        self._set_status("Sending…")
        self._worker.submit(job.run, self._sent, self._send_failed)

    def is_dirty(self) -> bool:
        """True when there is something that closing would throw away."""
        return bool(
            self.to_edit.text().strip() or self.cc_edit.text().strip()
            or self.bcc_edit.text().strip() or self.subject_edit.text().strip()
            or self.editor.toPlainText().strip() or self.attachment_paths
        )

    def closeEvent(self, event: QCloseEvent) -> None:
        if (
            not self._done
            and not self._sending
            and self.is_dirty()
            and not self._confirm(self, "Discard this email?")
        ):
            event.ignore()
            return
        event.accept()
        self.closed.emit()

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop background work (a send in progress still completes in the agent)."""
        self._worker.close(timeout_ms)

    def _sent(self, queue_id: str) -> None:
        self._sending = False
        self._done = True
        self._set_status("Sent.")
        self.sent.emit(queue_id)
        self.close()

    def _send_failed(self, error: BaseException) -> None:
        self._set_sending(False)
        message = str(error) or type(error).__name__
        if not isinstance(error, DraftError):
            log.error("sending from the compose window failed: %s", message)
            message = f"Not sent: {message}"
        self._set_status(message, True)
        self.sendFailed.emit(message)

    def _set_sending(self, sending: bool) -> None:
        self._sending = sending
        for widget in (self.send_button, self.from_edit, self.to_edit, self.cc_edit,
                       self.bcc_edit, self.subject_edit, self.attach_button,
                       self.remove_button, self.track_box, self.log_box,
                       self.use_template_button):
            widget.setEnabled(not sending)
        self.editor.setReadOnly(sending)
        if not sending:
            self._update_buttons()
            self._show_templates(self.template_list, self.template_box.currentText() or None)

    def _update_buttons(self, *_: object) -> None:
        self.remove_button.setEnabled(
            not self._sending and self.attachment_list.currentRow() >= 0
        )

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet(ERROR_STYLE if error else "")
        self.status.setText(text)


@dataclass(frozen=True, slots=True)
class _SendJob:
    """Everything a send needs, run on a worker thread: no Qt objects in here."""

    draft: Draft
    attachments: tuple[Path, ...]
    track: bool
    log: bool
    lookup: ContactLookup | None
    clock: Callable[[], datetime]
    send: Send

    def run(self) -> Awaitable[str] | str:
        draft = self._filled(self.draft)
        files = []
        for path in self.attachments:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise DraftError(
                    f"The attachment {path.name} cannot be read: {exc.strerror or exc}"
                ) from exc
            files.append(OutgoingAttachment(path.name, guess_content_type(path.name), data))
        draft = replace(draft, attachments=tuple(files))
        raw = build_message(draft, self.clock())
        _name, sender = parse_address(draft.sender)
        message = IncomingMessage(sender, envelope_recipients(draft), raw, self.track, self.log)
        return self.send(message)

    def _filled(self, draft: Draft) -> Draft:
        if not unfilled(draft.subject, draft.html, draft.text):
            return draft
        first = next(iter(draft.to), None)
        if first is None:
            raise DraftError("Placeholders are filled from the first To recipient: add one.")
        name, address = parse_address(first)
        contact = self.lookup(address) if self.lookup is not None else None
        values = placeholder_values(address, contact, name)
        draft = replace(
            draft,
            subject=fill(draft.subject, values),
            html=fill(draft.html, values, as_html=True),
            text=fill(draft.text, values),
        )
        left = unfilled(draft.subject, draft.html, draft.text)
        if left:
            raise DraftError(
                f"Nothing is known for {', '.join(left)} of {address}: replace "
                f"{'it' if len(left) == 1 else 'them'} before sending, or add the details "
                "to the contact's record."
            )
        return draft


class ComposeOpener:
    """Opens compose windows and keeps each alive until it closes (for the tray menu)."""

    def __init__(self, make: Callable[[], ComposeWindow]) -> None:
        self._make = make
        self.windows: list[ComposeWindow] = []

    def __call__(self) -> ComposeWindow:
        """A new compose window, shown."""
        window = self._make()
        self.windows.append(window)
        window.closed.connect(lambda: QTimer.singleShot(0, lambda: self._forget(window)))
        window.show()
        window.raise_()
        window.activateWindow()
        return window

    def _forget(self, window: ComposeWindow) -> None:
        if window in self.windows:
            self.windows.remove(window)
            window.shutdown(0)
            window.deleteLater()


def open_compose(
    parent: QWidget | None,
    send: Send,
    *,
    defaults: ComposeDefaults,
    contacts: QAbstractItemModel | None = None,
    lookup_contact: ContactLookup | None = None,
    templates: TemplateStore | None = None,
) -> ComposeWindow:
    """A shown compose window (keep a reference until ``closed``; see ``ComposeOpener``)."""
    window = ComposeWindow(send, defaults=defaults, contacts=contacts,
                           lookup_contact=lookup_contact, templates=templates, parent=parent)
    if parent is not None:
        window.setWindowFlag(Qt.WindowType.Window, True)
    window.show()
    return window


__all__ = [
    "ComposeDefaults",
    "ComposeOpener",
    "ComposeWindow",
    "Send",
    "open_compose",
]
