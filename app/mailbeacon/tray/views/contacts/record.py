"""One contact's record: editable properties, engagement, and the timeline.

Name, company and lawful basis are saved through the records store off the UI
thread. Last open, last click, last reply and last engagement are read-only:
only counted events move them (the agent decides). The timeline lists the emails
sent to the contact (with their logged copies), and the contact's opens, clicks
(with the reader's device and the verdict) and replies; anonymous events are
never in it (rules 8, 9). "Show filtered" adds the events no human made. Times
read as the rep says them ("yesterday 14:02", the full time on hover); the
verdict, its reason, the IP address and the user agent are behind "Show
details", off by default.
Double-clicking a logged email opens it in an ``EmailViewer`` (remote content
blocked). Everything from the records is plain text.
Unread (issue 20): events that arrived after the rep last saw the record (the
first read is the baseline) are bold and counted in the status line and the title
until the rep has seen the window (looked at and left, or closed: ``views.seen``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any, Protocol

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.agent.records.model import Contact, ContactRecord, EventEntry, SentEntry
from mailbeacon.core.events import HIT_TYPES, EventType, Verdict
from mailbeacon.core.language import ENGLISH, Language, mark
from mailbeacon.core.reasons import say as say_reason
from mailbeacon.core.uainfo import describe
from mailbeacon.core.uainfo import label as device_label
from mailbeacon.tray.threads.workers import Worker
from mailbeacon.tray.views.activity.model import VERDICT_LABELS
from mailbeacon.tray.views.activity.when import full_when, relative_when, utc_now
from mailbeacon.tray.views.contacts.lawful import LAWFUL_BASES, basis_code, basis_label
from mailbeacon.tray.views.email_viewer import (
    EmailViewer,
    LoggedEmailSource,
    ViewerData,
    load_viewer_data,
)
from mailbeacon.tray.views.labels import plain_label, show_status
from mailbeacon.tray.views.seen import SeenWatcher
from mailbeacon.tray.views.tables import (
    AnyIndex,
    RowTableModel,
    greyed_brush,
    setup_read_only_table,
)

log = logging.getLogger(__name__)

TYPE_LABELS: dict[str, str] = {
    EventType.OPEN: mark("Opened"),
    EventType.CLICK: mark("Clicked"),
    EventType.REPLY: mark("Replied"),
    EventType.DELIVERY_FAILED: mark("Delivery failed"),
}
FIELD_LABELS = {"to": mark("To"), "cc": mark("Cc"), "bcc": mark("Bcc")}
EMPTY_RECORD = mark(
    "No emails or events for this address yet. Send them an email from your mail client "
    "or Compose; opens and clicks appear here."
)


class RecordSource(LoggedEmailSource, Protocol):
    """What the record view reads and writes; ``RecordsStore`` is one."""

    def contact_record(
        self, email: str, include_non_human: bool = ...
    ) -> ContactRecord | None:
        """Properties and timeline."""
        ...

    def upsert_contact(
        self, email: str, name: str | None = ..., company: str | None = ...
    ) -> Contact:
        """Set name and company."""
        ...

    def set_lawful_basis(self, email: str, basis: str | None) -> Contact:
        """Set or clear the lawful basis."""
        ...


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One timeline line, as shown."""

    at: str
    what: str
    subject: str
    details: str
    verdict: str
    email_id: int | None
    logged: bool
    human: bool
    reason: str = ""
    ip: str = ""
    user_agent: str = ""
    event_id: int | None = None  # the stored event's id (None: a sent email)


def timeline_rows(record: ContactRecord, tr: Language = ENGLISH) -> list[TimelineRow]:
    """The record's timeline as display rows, newest first (as the store orders it)."""
    rows: list[TimelineRow] = []
    for entry in record.timeline:
        if isinstance(entry, SentEntry):
            rows.append(_sent_row(entry, tr))
        else:
            rows.append(_event_row(entry, tr))
    return rows


def _sent_row(entry: SentEntry, tr: Language) -> TimelineRow:
    email = entry.email
    if email.tracked:
        tracking = tr.t("tracked")
    elif email.track and email.untracked_reason:
        tracking = tr.t("not tracked: {reason}", reason=tr.t(email.untracked_reason))
    elif email.track:
        tracking = tr.t("not tracked")
    else:
        tracking = tr.t("tracking off")
    details = (tr.t("{tracking}; logged copy (double-click to view)", tracking=tracking)
               if entry.copy else tracking)
    field = tr.t(FIELD_LABELS[entry.field]) if entry.field in FIELD_LABELS else entry.field
    return TimelineRow(
        at=entry.at,
        what=tr.t("Sent ({field})", field=field),
        subject=email.subject,
        details=details,
        verdict="",
        email_id=email.id,
        logged=entry.copy is not None,
        human=True,
    )


def _event_row(entry: EventEntry, tr: Language) -> TimelineRow:
    event = entry.event
    what = tr.t(TYPE_LABELS[event.type]) if event.type in TYPE_LABELS else event.type
    notes = [tr.t(n) for n, on in ((mark("inferred"), event.inferred),
                                   (mark("possibly forwarded"), event.possibly_forwarded)) if on]
    if notes:  # the notification's words; neither note hides the other
        what = tr.t("{what} ({notes})", what=what, notes=", ".join(notes))
    parts: list[str] = []
    if event.type == EventType.CLICK and event.url:
        parts.append(event.url)
    if event.type in HIT_TYPES and event.user_agent:
        parts.append(device_label(describe(event.user_agent), tr))
    if event.type == EventType.DELIVERY_FAILED:
        recipients = event.details.get("recipients")
        if isinstance(recipients, list):
            parts.append(", ".join(str(r) for r in recipients))
    verdict = (tr.t(VERDICT_LABELS[event.verdict]) if event.verdict in VERDICT_LABELS
               else event.verdict.capitalize())
    if event.type == EventType.DELIVERY_FAILED:
        verdict = ""  # nobody opened anything: no verdict to show
    return TimelineRow(
        at=event.at,
        what=what,
        subject=entry.subject if entry.subject is not None else tr.t("(unknown email)"),
        details=" · ".join(parts),
        verdict=verdict,
        email_id=event.email_id,
        logged=False,
        human=event.verdict == Verdict.HUMAN,
        reason=say_reason(event.reason, tr),
        ip=event.ip or "",
        user_agent=event.user_agent,
        event_id=event.id,
    )


class TimelineColumn(IntEnum):
    """The timeline's columns."""

    WHEN = 0
    WHAT = 1
    EMAIL = 2
    DETAILS = 3
    VERDICT = 4
    REASON = 5
    IP = 6
    USER_AGENT = 7


TIMELINE_HEADERS = (mark("When"), mark("What"), mark("Email"), mark("Where"), mark("Verdict"),
                    mark("Reason"), mark("IP address"), mark("User agent"))
DETAIL_COLUMNS = (TimelineColumn.VERDICT, TimelineColumn.REASON, TimelineColumn.IP,
                  TimelineColumn.USER_AGENT)
"""What the agent decided and from where, behind "Show details"."""


class TimelineModel(RowTableModel[TimelineRow]):
    """The timeline rows (plain text); non-human rows greyed; times relative to ``now()``;
    events newer than ``seen_id`` bold (None: nothing is new)."""

    def __init__(
        self,
        parent: QObject | None = None,
        now: Callable[[], datetime] = utc_now,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(tuple(tr.t(h) for h in TIMELINE_HEADERS), parent)
        self._tr = tr
        self._grey = greyed_brush()
        self._now = now
        self._seen_id: int | None = None
        self._new_font = QFont(QGuiApplication.font())
        self._new_font.setBold(True)

    @property
    def new_count(self) -> int:
        """Events shown that arrived after the rep last saw the record."""
        return sum(1 for row in self._rows if self.is_new(row))

    def is_new(self, row: TimelineRow) -> bool:
        """True for an event newer than what the rep has seen."""
        return self._seen_id is not None and (row.event_id or 0) > self._seen_id

    def newest_event(self) -> int:
        """The newest event id shown (0: none)."""
        return max((row.event_id or 0 for row in self._rows), default=0)

    def set_seen(self, seen_id: int) -> None:
        """Events up to ``seen_id`` are seen; bold rows turn normal."""
        self._seen_id = seen_id
        if self._rows:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self._rows) - 1, len(TIMELINE_HEADERS) - 1),
                                  [Qt.ItemDataRole.FontRole])

    def cell_data(self, row: TimelineRow, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                relative_when(row.at, self._now(), tr=self._tr), row.what, row.subject,
                row.details,
                row.verdict, row.reason, row.ip, row.user_agent,
            )[column] if 0 <= column < len(TIMELINE_HEADERS) else None
        if role == Qt.ItemDataRole.ToolTipRole and column == TimelineColumn.WHEN:
            return full_when(row.at, tr=self._tr)  # our own text, never data from outside
        if role == Qt.ItemDataRole.ForegroundRole and not row.human:
            return self._grey
        if role == Qt.ItemDataRole.FontRole and self.is_new(row):
            return self._new_font
        return None


ViewerFactory = Callable[[ViewerData], EmailViewer]


class RecordView(QWidget):
    """The record of the contact ``email``.

    Signals: ``loaded()`` after each read; ``loadFailed(str)``; ``saved(str email)``
    after the properties were stored; ``emailOpened(int email_id)`` when a logged
    email's viewer was shown.
    """

    loaded = Signal()
    loadFailed = Signal(str)
    saved = Signal(str)
    emailOpened = Signal(int)

    def __init__(
        self,
        source: RecordSource,
        email: str,
        *,
        worker: Worker | None = None,
        viewer_factory: ViewerFactory | None = None,
        now: Callable[[], datetime] = utc_now,
        parent: QWidget | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(parent)
        self._tr = tr
        self.email = email.strip().lower()
        self._source = source
        self._worker = worker or Worker(1, self)
        self._viewer_factory = viewer_factory or (
            lambda data: EmailViewer(data, source.attachment_content, tr=tr)
        )
        self._generation = 0
        self._first_read = True
        self._now = now
        self.contact: Contact | None = None
        self.viewers: list[EmailViewer] = []
        self.setWindowTitle(tr.t("{subject} — MailBeacon", subject=self.email))
        self.resize(900, 640)

        self.title = plain_label(self.email)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.title.setFont(font)

        self.name_edit = QLineEdit()
        self.company_edit = QLineEdit()
        self.basis_box = QComboBox()
        self.save_button = QPushButton(tr.t("&Save"))
        self.address_label = plain_label(self.email)
        self.last_open = plain_label("—")
        self.last_click = plain_label("—")
        self.last_reply = plain_label("—")
        self.last_engagement = plain_label("—")
        self.counts = plain_label("")
        self.timeline_model = TimelineModel(self, now, tr)
        self.timeline = QTableView()
        self.timeline.setModel(self.timeline_model)
        self._setup_timeline()
        self.show_filtered = QCheckBox(tr.t("Show filtered"))
        self.show_filtered.setToolTip(
            tr.t("Also show opens and clicks that no person made (scanners, image proxies, "
                 "your own)")
        )
        self.show_details = QCheckBox(tr.t("Show details"))
        self.show_details.setToolTip(
            tr.t(
                "Also show why each event counts as a person or not (verdict and reason), "
                "and the reader's IP address and browser"
            )
        )
        self._show_details(False)
        self.status = plain_label(tr.t("Loading…"))
        self.status.setWordWrap(True)
        self._lay_out()

        for edit in (self.name_edit, self.company_edit):
            edit.textChanged.connect(self._update_dirty)
        self.basis_box.currentTextChanged.connect(self._update_dirty)
        self.save_button.clicked.connect(self.save)
        self.show_filtered.toggled.connect(lambda _on: self.reload())
        self.show_details.toggled.connect(self._show_details)
        self.timeline.doubleClicked.connect(self._double_clicked)
        self._seen_watcher = SeenWatcher(self, self.mark_seen)
        self.reload()

    # ------------------------------------------------------------ public

    @property
    def worker(self) -> Worker:
        """The worker reads and writes run on."""
        return self._worker

    def reload(self) -> None:
        """Read the record again."""
        self._generation += 1
        generation = self._generation
        include = self.show_filtered.isChecked()
        self._worker.submit(
            lambda: self._source.contact_record(self.email, include_non_human=include),
            lambda record: self._loaded(generation, record),
            lambda error: self._load_failed(generation, error),
        )

    def mark_seen(self) -> None:
        """The rep has seen the record: nothing in it is new any more."""
        self.timeline_model.set_seen(self.timeline_model.newest_event())
        self._show_counts()

    def properties(self) -> tuple[str, str, str | None]:
        """Name, company and lawful basis (None: none) as typed."""
        basis = basis_code(self.basis_box.currentText().strip(), self._tr)
        return self.name_edit.text().strip(), self.company_edit.text().strip(), basis or None

    def is_dirty(self) -> bool:
        """True when the typed properties differ from the stored ones."""
        stored = self.contact
        name, company, basis = self.properties()
        if stored is None:
            return bool(name or company or basis)
        return (name, company, basis) != (stored.name, stored.company, stored.lawful_basis)

    def save(self) -> None:
        """Store name, company and lawful basis (off the UI thread)."""
        name, company, basis = self.properties()
        email = self.email
        source = self._source

        def write() -> Contact:
            source.upsert_contact(email, name=name, company=company)
            return source.set_lawful_basis(email, basis)

        self.save_button.setEnabled(False)
        self._set_status(self._tr.t("Saving…"))
        self._worker.submit(write, self._saved, self._save_failed)

    def open_email(self, email_id: int) -> None:
        """Show the logged copy of ``email_id`` (or say why there is none)."""
        source = self._source
        self._worker.submit(
            lambda: load_viewer_data(source, email_id),
            self._show_viewer,
            lambda error: self._set_status(str(error), error=True),
        )

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop background work, here and in open viewers (before the store closes)."""
        self._generation += 1
        for viewer in self.viewers:
            viewer.shutdown(timeout_ms)
        self._worker.close(timeout_ms)

    # ------------------------------------------------------------ internals

    def _lay_out(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self._properties_box(), 1)
        top.addWidget(self._engagement_box(), 1)
        timeline_bar = QHBoxLayout()
        timeline_bar.addWidget(QLabel(self._tr.t("Timeline")))
        timeline_bar.addStretch(1)
        timeline_bar.addWidget(self.show_filtered)
        timeline_bar.addWidget(self.show_details)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(top)
        layout.addLayout(timeline_bar)
        layout.addWidget(self.timeline, 1)
        layout.addWidget(self.status)

    def _properties_box(self) -> QGroupBox:
        self.basis_box.setEditable(True)
        self.basis_box.addItem("")
        self.basis_box.addItems([basis_label(code, self._tr) for code in LAWFUL_BASES])
        line = self.basis_box.lineEdit()
        if line is not None:
            line.setPlaceholderText(
                self._tr.t("none (tracked as Someone when data privacy is on)")
            )
        self.save_button.setEnabled(False)
        tr = self._tr
        box = QGroupBox(tr.t("Properties"))
        form = QFormLayout(box)
        form.addRow(tr.t("Name:"), self.name_edit)
        form.addRow(tr.t("Company:"), self.company_edit)
        form.addRow(tr.t("Lawful basis:"), self.basis_box)
        save_row = QHBoxLayout()
        save_row.addStretch(1)
        save_row.addWidget(self.save_button)
        form.addRow(save_row)
        return box

    def _engagement_box(self) -> QGroupBox:
        tr = self._tr
        box = QGroupBox(tr.t("Engagement"))
        form = QFormLayout(box)
        form.addRow(tr.t("Email:"), self.address_label)
        form.addRow(tr.t("Last open:"), self.last_open)
        form.addRow(tr.t("Last click:"), self.last_click)
        form.addRow(tr.t("Last reply:"), self.last_reply)
        form.addRow(tr.t("Last engagement:"), self.last_engagement)
        form.addRow(tr.t("Counted:"), self.counts)
        return box

    def _setup_timeline(self) -> None:
        # The widths leave the verdict (and its reason) room at the window's own width.
        setup_read_only_table(
            self.timeline, ((0, 120), (1, 150), (2, 250), (3, 260), (4, 70), (5, 220), (6, 110))
        )

    def _show_details(self, shown: bool) -> None:
        for column in DETAIL_COLUMNS:
            self.timeline.setColumnHidden(column, not shown)

    def _loaded(self, generation: int, record: ContactRecord | None) -> None:
        if generation != self._generation:
            return
        if record is None:
            self.contact = None
            self.timeline_model.set_rows([])
            if self._first_read:  # a contact yet to come: all they do will be new
                self._first_read = False
                self.timeline_model.set_seen(0)
            self._set_status(self._tr.t(EMPTY_RECORD))
            self.loaded.emit()
            return
        self._show_contact(record.contact)
        tr = self._tr
        self.counts.setText(" · ".join((
            tr.n("{count} open", "{count} opens", record.opens),
            tr.n("{count} click", "{count} clicks", record.clicks),
            tr.n("{count} reply", "{count} replies", record.replies),
        )))
        model = self.timeline_model
        model.set_rows(timeline_rows(record, tr))
        if self._first_read:  # the baseline: what was there before is not news
            self._first_read = False
            model.set_seen(model.newest_event())
        self._show_counts()
        self.loaded.emit()

    def _show_counts(self) -> None:
        entries = self.timeline_model.rowCount()
        new = self.timeline_model.new_count
        if self.contact is None:
            return
        tr = self._tr
        text = (tr.n("{count} timeline entry", "{count} timeline entries", entries) if entries
                else tr.t(EMPTY_RECORD))
        if new:
            text = tr.n("{text} · {count} new since you last looked",
                        "{text} · {count} new since you last looked", new, text=text)
        self._set_status(text)
        display = self.contact.name or self.contact.email
        self.setWindowTitle(
            tr.n("{name} ({count} new) — MailBeacon", "{name} ({count} new) — MailBeacon", new,
                 name=display) if new
            else tr.t("{subject} — MailBeacon", subject=display)
        )

    def _show_contact(self, contact: Contact) -> None:
        keep_edits = self.is_dirty() and self.contact is not None
        self.contact = contact
        display = contact.name or contact.email
        self.title.setText(display)
        self.setWindowTitle(self._tr.t("{subject} — MailBeacon", subject=display))
        if not keep_edits:  # a reload must not throw away what the rep is typing
            self.name_edit.setText(contact.name)
            self.company_edit.setText(contact.company)
            self.basis_box.setCurrentText(basis_label(contact.lawful_basis or "", self._tr))
        now = self._now()
        for label, at in ((self.last_open, contact.last_open),
                          (self.last_click, contact.last_click),
                          (self.last_reply, contact.last_reply),
                          (self.last_engagement, contact.last_engagement)):
            label.setText(relative_when(at, now, tr=self._tr))
            label.setToolTip(full_when(at, tr=self._tr))
        self._update_dirty()

    def _load_failed(self, generation: int, error: BaseException) -> None:
        if generation != self._generation:
            return
        log.error("reading the record of %s failed: %s", self.email, error)
        message = self._tr.t("The record could not be read: {error}", error=error)
        self._set_status(message, error=True)
        self.loadFailed.emit(message)

    def _saved(self, contact: Contact) -> None:
        self.contact = None  # take the stored values as they are now
        self._show_contact(contact)
        self._set_status(self._tr.t("Saved."))
        self.saved.emit(contact.email)

    def _save_failed(self, error: BaseException) -> None:
        log.error("saving the contact %s failed: %s", self.email, error)
        self._set_status(self._tr.t("Not saved: {error}", error=error), error=True)
        self._update_dirty()

    def _update_dirty(self, *_: object) -> None:
        self.save_button.setEnabled(self.is_dirty())

    def _double_clicked(self, index: AnyIndex) -> None:
        row = self.timeline_model.row_at(index)
        if row is None or row.email_id is None:
            return
        self.open_email(row.email_id)

    def _show_viewer(self, data: ViewerData) -> None:
        for viewer in self.viewers:
            if viewer.data.email.id == data.email.id:
                viewer.show()
                viewer.raise_()
                viewer.activateWindow()
                self.emailOpened.emit(data.email.id)
                return
        viewer = self._viewer_factory(data)
        viewer.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
        self.viewers.append(viewer)
        viewer.show()
        viewer.raise_()
        self.emailOpened.emit(data.email.id)

    def _set_status(self, text: str, error: bool = False) -> None:
        show_status(self.status, text, error)
