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

Templates (``compose.templates``): placeholders ``{first_name}``, ``{last_name}``,
``{company}`` and ``{email}`` are filled from the first To recipient's contact
record when a template is used, and any left in the subject or body are filled
again at send time (``compose.send_job``); a placeholder with no value stops the
send with a message. The body's helpers are in ``compose.document``, the
address fields, editor and format toolbar in ``compose.widgets``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path

from PySide6.QtCore import QAbstractItemModel, Qt, QTimer, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QTextListFormat,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.agent.sending.compose_message import Draft, DraftError, check_draft, parse_address
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.language import ENGLISH, Language, in_language, said
from mailbeacon.tray.threads.workers import Worker
from mailbeacon.tray.views.compose.document import (
    click_note,
    document_text,
    email_html,
    local_files,
    trackable_links,
)
from mailbeacon.tray.views.compose.later import (
    AskTime,
    LaterButton,
    RemindControls,
    ask_time_dialog,
    describe_time,
    local_zone,
)
from mailbeacon.tray.views.compose.send_job import ContactLookup, Send, SendJob
from mailbeacon.tray.views.compose.templates import (
    Template,
    TemplateStore,
    fill,
    placeholder_values,
    unfilled,
)
from mailbeacon.tray.views.compose.widgets import (
    AddressField,
    AskText,
    ChooseFiles,
    Confirm,
    FormatToolbar,
    RichEditor,
    ask_text_dialog,
    choose_files_dialog,
    confirm_dialog,
)
from mailbeacon.tray.views.labels import show_status

log = logging.getLogger(__name__)


LINK_NOTE_DELAY_MS = 300
LARGE_ATTACHMENTS = 25 * 1024 * 1024  # many providers refuse larger messages


@dataclass(frozen=True, slots=True)
class ComposeDefaults:
    """What a new email starts with."""

    sender: str = ""
    track: bool = True
    log: bool = False
    clicks: bool = True  # settings tracking.clicks
    opens: bool = True  # settings tracking.opens (off: clicks only)
    remind_days: int = 0  # settings defaults.remind_days (0: the box starts unticked)
    tracking_allowed: bool = True  # the team's policy: off, nothing is tracked (locked)

    @classmethod
    def from_settings(
        cls, settings: Settings, sender: str, tracking_allowed: bool = True
    ) -> ComposeDefaults:
        """Track and Log defaults and click tracking from the rep's settings (with what
        the team enforces), and whether the team allows tracking at all."""
        return cls(sender, settings.defaults.track and tracking_allowed, settings.defaults.log,
                   settings.tracking.clicks, settings.tracking.opens,
                   settings.defaults.remind_days, tracking_allowed)


@dataclass(frozen=True, slots=True)
class SentEmail:
    """One email the agent took: the relay's answer, whether it was sent tracked, its
    subject (for the tray's confirmation)."""

    answer: str
    tracked: bool
    subject: str
    send_at: datetime | None = None  # scheduled ("Send later…"): when it goes


class ComposeWindow(QWidget):
    """Write and send one email.

    Signals: ``sent(str answer)`` once the agent queued it, with the relay's answer
    (its queue id), and ``handedOver(SentEmail)`` right after it with what the
    confirmation says (the window then closes); ``sendFailed(str message)`` (also
    shown in the window); ``templatesChanged()`` after a template was saved or
    deleted; ``closed()``.
    """

    sent = Signal(str)
    handedOver = Signal(object)  # SentEmail
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
        zone: Callable[[], tzinfo] = local_zone,
        ask_time: AskTime = ask_time_dialog,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(parent)
        self._tr = tr
        self._zone = zone
        self._ask_time = ask_time
        self._send_at: datetime | None = None
        # Set by a reply in a thread ("Write follow-up"): In-Reply-To and References.
        self.reply_thread: tuple[str, str] = ("", "")
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
        self.setWindowTitle(self._tr.t("New email — MailBeacon"))
        self.resize(820, 680)
        self.setAcceptDrops(True)
        # The window owns the contacts model: the completers' proxies do not, and a
        # model nobody in Python holds is collected, leaving autocomplete empty.
        if contacts is not None and contacts.parent() is None:
            contacts.setParent(self)
        self._contacts = contacts
        self._build(contacts)
        self.toolbar = FormatToolbar(
            self.editor,
            lambda: self._ask_text(
                self, self._tr.t("Insert link"), self._tr.t("Web address:"), "https://"
            ),
            tr=self._tr,
        )
        self.bold_action = self.toolbar.bold_action
        self.italic_action = self.toolbar.italic_action
        self.bullets_action = self.toolbar.bullets_action
        self.numbers_action = self.toolbar.numbers_action
        self.link_action = self.toolbar.link_action
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
        self.track_box = QCheckBox(self._tr.t("Trac&k opens and clicks"))
        self.track_box.setChecked(self.defaults.track)
        if not self.defaults.tracking_allowed:
            # The agent would send it untracked anyway: say so, not offer it.
            self.track_box.setEnabled(False)
            self.track_box.setToolTip(
                self._tr.t("Set by your team: tracking is off for your account.")
            )
        # Track: opens and clicks / clicks only / off (docs/rules.md, rule 1).
        self.clicks_only_box = QCheckBox(self._tr.t("Clicks onl&y (no open-tracking image)"))
        self.clicks_only_box.setChecked(not self.defaults.opens)
        self.clicks_only_box.setEnabled(self.defaults.track)
        self.clicks_only_box.setToolTip(
            self._tr.t(
                "No image goes into the email, so short emails cost nothing with spam "
                "filters; the first click still tells you it was opened."
            )
        )
        self.log_box = QCheckBox(self._tr.t("&Log a copy on the contacts' records"))
        self.log_box.setChecked(self.defaults.log)
        self.click_label = QLabel()
        self.click_label.setTextFormat(Qt.TextFormat.PlainText)
        self.click_label.setWordWrap(True)
        # Said when recipients cannot reach tracking (the agent decides; issue 20).
        self.reach_label = QLabel()
        self.reach_label.setObjectName("reach_label")
        self.reach_label.setTextFormat(Qt.TextFormat.PlainText)
        self.reach_label.setWordWrap(True)
        self.reach_label.setStyleSheet("color: #b45309;")
        self.reach_label.hide()
        self.attachment_list = QListWidget()
        self.attachment_list.setMaximumHeight(72)
        self.attach_button = QPushButton(self._tr.t("&Attach…"))
        self.remove_button = QPushButton(self._tr.t("Remo&ve"))
        self.attachment_note = QLabel()
        self.attachment_note.setTextFormat(Qt.TextFormat.PlainText)
        self.template_box = QComboBox()
        self.template_box.setMinimumContentsLength(18)
        self.use_template_button = QPushButton(self._tr.t("Us&e"))
        self.save_template_button = QPushButton(self._tr.t("Save as te&mplate…"))
        self.delete_template_button = QPushButton(self._tr.t("&Delete"))
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        self.send_button = QPushButton(self._tr.t("&Send"))
        self.send_button.setDefault(True)
        self.later_button = LaterButton(self._clock, self._zone, self._ask_time, tr=self._tr)
        self.remind = RemindControls(self.defaults.remind_days, tr=self._tr)

    def _connect(self) -> None:
        self._note_timer.timeout.connect(self.update_click_note)
        self.editor.textChanged.connect(self._note_timer.start)
        self.track_box.toggled.connect(lambda _on: self.update_click_note())
        self.track_box.toggled.connect(self.clicks_only_box.setEnabled)
        self.clicks_only_box.toggled.connect(lambda _on: self.update_click_note())
        self.editor.filesDropped.connect(self.add_attachments)
        self.toolbar.bodyChanged.connect(self.update_click_note)
        self.attach_button.clicked.connect(self._attach_clicked)
        self.remove_button.clicked.connect(self.remove_selected_attachment)
        self.attachment_list.currentRowChanged.connect(self._update_buttons)
        self.use_template_button.clicked.connect(self.use_selected_template)
        self.save_template_button.clicked.connect(self.save_as_template)
        self.delete_template_button.clicked.connect(self.delete_selected_template)
        self.send_button.clicked.connect(self.send)
        self.later_button.chosen.connect(self.send_later)

    # ------------------------------------------------------------ layout

    def _lay_out(self) -> None:
        form = QFormLayout()
        form.addRow(self._tr.t("&From:"), self.from_edit)
        form.addRow(self._tr.t("&To:"), self.to_edit)
        form.addRow(self._tr.t("&Cc:"), self.cc_edit)
        form.addRow(self._tr.t("&Bcc:"), self.bcc_edit)
        form.addRow(self._tr.t("S&ubject:"), self.subject_edit)
        self.template_row = QWidget()
        templates = QHBoxLayout(self.template_row)
        templates.setContentsMargins(0, 0, 0, 0)
        templates.addWidget(QLabel(self._tr.t("Template:")))
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
        options.addWidget(self.clicks_only_box)
        options.addWidget(self.log_box)
        options.addStretch(1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.later_button)
        bottom.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.template_row)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.editor, 1)
        layout.addWidget(QLabel(self._tr.t("Attachments (drop files here):")))
        layout.addLayout(attachments)
        layout.addWidget(self.attachment_note)
        layout.addLayout(options)
        layout.addWidget(self.remind)
        layout.addWidget(self.click_label)
        layout.addWidget(self.reach_label)
        layout.addLayout(bottom)

    # ------------------------------------------------------------ formatting

    def toggle_list(self, style: QTextListFormat.Style) -> None:
        """Make the selected paragraphs a list of ``style``, or plain paragraphs again."""
        self.toolbar.toggle_list(style)

    def insert_link(self, url: str, text: str = "") -> None:
        """Link the selection (or insert ``text``, else the URL itself) to ``url``."""
        self.toolbar.insert_link(url, text)

    # ------------------------------------------------------------ tracking note

    def set_reach_note(self, text: str) -> None:
        """Say why opens and clicks of this email will not be seen (empty: hide it)."""
        self.reach_label.setText(text)
        self.reach_label.setVisible(bool(text))

    def update_click_note(self) -> None:
        """Say what will be tracked for the body as it is now."""
        self._note_timer.stop()
        trackable, total = trackable_links(email_html(self.editor.document()))
        self.click_label.setText(
            click_note(self.track_box.isChecked(), self.defaults.clicks, trackable, total,
                       clicks_only=self._clicks_only(), tr=self._tr)
        )

    def _clicks_only(self) -> bool:
        return self.track_box.isChecked() and self.clicks_only_box.isChecked()

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
            item = QListWidgetItem(f"{path.name}  ({self._tr.size(size)})")
            item.setToolTip(str(path).replace("<", "&lt;"))
            self.attachment_list.addItem(item)
        if refused:
            self._set_status(self._tr.t("Not attached (not a readable file): {files}",
                                        files=", ".join(refused)), True)
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
                self._tr.t("Attachments total {size}: many mail servers refuse messages over "
                           "25 MB.", size=self._tr.size(total))
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
            lambda error: self._set_status(
                self._tr.t("Templates could not be read: {error}", error=error), True
            ),
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
            lambda error: self._set_status(
                self._tr.t("The contact could not be read: {error}", error=error), True
            ),
        )

    def save_as_template(self) -> None:
        """Store the subject and body as a template (tracking removed)."""
        store = self._templates
        if store is None:
            return
        current = self.selected_template()
        name = self._ask_text(self, self._tr.t("Save as template"), self._tr.t("Template name:"),
                              current.name if current else self.subject_edit.text())
        if not name or not name.strip():
            return
        template = Template(name.strip(), self.subject_edit.text(), self.editor.toHtml())
        self._worker.submit(
            lambda: store.save(template),
            self._template_saved,
            lambda error: self._set_status(
                self._tr.t("The template was not saved: {error}", error=error), True
            ),
        )

    def delete_selected_template(self) -> None:
        """Delete the chosen template after asking."""
        store, template = self._templates, self.selected_template()
        if store is None or template is None:
            return
        if not self._confirm(self, self._tr.t("Delete the template “{name}”?",
                                              name=template.name)):
            return
        self._worker.submit(
            lambda: store.delete(template.name),
            lambda _deleted: self._templates_changed(None),
            lambda error: self._set_status(
                self._tr.t("The template was not deleted: {error}", error=error), True
            ),
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
        self._set_status(self._tr.t("Saved the template “{name}”.", name=template.name))
        self._templates_changed(template.name)

    def _templates_changed(self, select: str | None) -> None:
        store = self._templates
        if store is None:
            return
        self._worker.submit(
            store.load,
            lambda templates: self._templates_reloaded(templates, select),
            lambda error: self._set_status(
                self._tr.t("Templates could not be read: {error}", error=error), True
            ),
        )

    def _templates_reloaded(self, templates: list[Template], select: str | None) -> None:
        self._show_templates(templates, select)
        self.templatesChanged.emit()

    def _apply_template(self, template: Template, values: dict[str, str | None]) -> None:
        self.subject_edit.setText(fill(template.subject, values))
        self.editor.setHtml(fill(template.html, values, as_html=True))
        left = unfilled(self.subject_edit.text(), self.editor.toPlainText())
        if left:
            self._set_status(self._tr.t(
                "To fill in: {fields} (filled from the first To recipient's contact when you "
                "send).", fields=", ".join(left),
            ))
        else:
            self._set_status(self._tr.t("Used the template “{name}”.", name=template.name))
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
            in_reply_to=self.reply_thread[0],
            references=self.reply_thread[1],
        )

    def send_later(self, at: datetime) -> None:
        """Send at ``at`` (aware): the agent keeps the email until then."""
        self.send(at)

    def send(self, at: datetime | None = None) -> None:
        """Check the email, then build and send it off the UI thread."""
        if self._sending:
            return
        self._send_at = at if isinstance(at, datetime) else None
        draft = self.draft()
        try:
            check_draft(draft, self._tr)
        except DraftError as exc:
            self._set_status(str(exc), True)
            return
        job = SendJob(draft, tuple(self.attachment_paths), self.track_box.isChecked(),
                       self.log_box.isChecked(), self._lookup, self._clock, self._send,
                       clicks_only=self._clicks_only(), send_at=self._send_at,
                       remind=self.remind.delay(), tr=self._tr)
        self._set_sending(True)
        self._set_status(self._tr.t("Sending…"))
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
            and not self._confirm(self, self._tr.t("Discard this email?"))
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
        when = self._send_at
        self._set_status(
            self._tr.t("Sent.") if when is None
            else self._tr.t(
                "Scheduled for {when}.", when=describe_time(when, self._zone(), self._tr)
            )
        )
        tracked = self.track_box.isChecked() and (self.defaults.opens or self.defaults.clicks)
        self.sent.emit(queue_id)
        self.handedOver.emit(
            SentEmail(queue_id, tracked, self.subject_edit.text().strip(), send_at=when)
        )
        self.close()

    def _send_failed(self, error: BaseException) -> None:
        self._set_sending(False)
        # The agent's own words (a phrase) in the rep's language; others as they came.
        message = in_language(said(error), self._tr) or type(error).__name__
        if not isinstance(error, DraftError):
            log.error("sending from the compose window failed: %s", message)
            message = self._tr.t("Not sent: {error}", error=message)
        self._set_status(message, True)
        self.sendFailed.emit(message)

    def _set_sending(self, sending: bool) -> None:
        self._sending = sending
        self.later_button.setEnabled(not sending)
        for widget in (self.send_button, self.from_edit, self.to_edit, self.cc_edit,
                       self.bcc_edit, self.subject_edit, self.attach_button,
                       self.remove_button, self.track_box, self.clicks_only_box, self.log_box,
                       self.use_template_button):
            widget.setEnabled(not sending)
        if not self.defaults.tracking_allowed:
            self.track_box.setEnabled(False)  # the team's, whatever the sending state
        self.editor.setReadOnly(sending)
        if not sending:
            self._update_buttons()
            self._show_templates(self.template_list, self.template_box.currentText() or None)

    def _update_buttons(self, *_: object) -> None:
        self.remove_button.setEnabled(
            not self._sending and self.attachment_list.currentRow() >= 0
        )

    def _set_status(self, text: str, error: bool = False) -> None:
        show_status(self.status, text, error)
