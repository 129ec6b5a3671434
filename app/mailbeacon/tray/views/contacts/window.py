"""The contacts window: every contact, searchable and sortable; double-click opens the
contact's record (``RecordView``), one window per contact. With no contacts yet, or
none matching the search, the window says what to do next instead of an empty table.
Contacts with activity the rep has not seen are bold and counted in the title and
the status line; opening a record marks that contact seen, having seen the window
(looked at and left, or closed) marks them all (``views.seen``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Protocol

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.agent.records.model import Contact
from mailbeacon.core.language import ENGLISH, Language, mark
from mailbeacon.tray.threads.workers import Worker
from mailbeacon.tray.views.activity.when import CLOCK_MS, utc_now
from mailbeacon.tray.views.contacts.model import (
    CONTACT_ROLE,
    SEARCH_ROLE,
    Column,
    ContactsModel,
    ContactsSource,
)
from mailbeacon.tray.views.contacts.record import RecordSource, RecordView
from mailbeacon.tray.views.labels import empty_state, plain_label
from mailbeacon.tray.views.seen import SeenWatcher
from mailbeacon.tray.views.sequences.enroll import Enrolled
from mailbeacon.tray.views.tables import SORT_ROLE, setup_read_only_table

AnyIndex = QModelIndex | QPersistentModelIndex

COLUMN_WIDTHS = {
    Column.NAME: 170,
    Column.EMAIL: 220,
    Column.COMPANY: 150,
    Column.LAST_OPEN: 125,
    Column.LAST_CLICK: 125,
    Column.LAST_ENGAGEMENT: 125,
}
NO_CONTACTS = mark(
    "No contacts yet. Everyone you email from your mail client or Compose appears here, "
    "with their last open and click."
)
NO_MATCH = mark("No contact matches the search. Clear it to see everyone.")
TITLE = mark("Contacts — MailBeacon")


class ContactsSearch(QSortFilterProxyModel):
    """Sorts by ``SORT_ROLE`` and keeps rows whose name, address or company hold the text."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.setFilterRole(SEARCH_ROLE)
        self.setFilterKeyColumn(0)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

    def set_text(self, text: str) -> None:
        """Show only contacts containing ``text`` (empty: all)."""
        self.setFilterFixedString(text.strip().casefold())


class ContactsStore(RecordSource, ContactsSource, Protocol):
    """What the contacts window and its records use; ``RecordsStore`` is one."""


RecordFactory = Callable[[str], RecordView]
# Enrols the selected contacts in a sequence the rep picks (None: cancelled).
AddToSequence = Callable[[QWidget, list[Contact]], Enrolled | None]


class ContactsWindow(QWidget):
    """The contacts table. ``recordOpened(str email)`` once a record window shows.

    ``record_factory(email)`` builds a record window (default: a ``RecordView``
    over the same store); ``record_views`` holds the open ones by address.
    ``now()`` and ``tz`` go to the model (times relative to now, in ``tz``).
    With ``add_to_sequence``, "Add to sequence…" enrols the selected contacts.
    """

    recordOpened = Signal(str)

    def __init__(
        self,
        source: ContactsStore,
        *,
        worker: Worker | None = None,
        model: ContactsModel | None = None,
        record_factory: RecordFactory | None = None,
        now: Callable[[], datetime] = utc_now,
        tz: tzinfo | None = None,
        add_to_sequence: AddToSequence | None = None,
        parent: QWidget | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(parent)
        self._tr = tr
        self.setWindowTitle(tr.t(TITLE))
        self._add_to_sequence = add_to_sequence
        self.resize(1100, 600)
        self._source = source
        self.model = model or ContactsModel(
            source, worker=worker, now=now, tz=tz, parent=self, tr=tr
        )
        self._record_factory = record_factory or (lambda email: RecordView(source, email, tr=tr))
        self.record_views: dict[str, RecordView] = {}

        self.search = QLineEdit()
        self.search.setPlaceholderText(tr.t("Search name, email or company"))
        self.search.setClearButtonEnabled(True)
        self.refresh_button = QPushButton(tr.t("&Refresh"))
        self.status = QLabel(tr.t("Loading…"))
        self.status.setTextFormat(Qt.TextFormat.PlainText)

        self.proxy = ContactsSearch(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self._setup_table()
        self.stack, self.empty = empty_state(self.table)
        self.sequence_button = QPushButton(tr.t("Add to &sequence…"))
        self.sequence_button.setVisible(add_to_sequence is not None)
        self.sequence_button.setEnabled(False)
        self.note = plain_label(wrap=True)
        self.note.setVisible(False)
        self._lay_out()

        self.search.textChanged.connect(self._search_changed)
        self.refresh_button.clicked.connect(self.refresh)
        self.sequence_button.clicked.connect(self.add_selected_to_sequence)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(self._double_clicked)
        self.model.loaded.connect(self._update_status)
        self.model.loadFailed.connect(self.status.setText)
        self.model.newCountChanged.connect(self._update_status)
        self._seen_watcher = SeenWatcher(self, self.mark_seen)

        self._clock = QTimer(self)
        self._clock.setInterval(CLOCK_MS)
        self._clock.timeout.connect(self.model.times_changed)
        self._clock.start()

    def refresh(self) -> None:
        """Read the contacts again."""
        self.model.refresh()

    def event_added(self, *_event: object) -> None:
        """Something new was stored: the list and every open record read it again
        (a record keeps what the rep is typing)."""
        self.refresh()
        for view in self.record_views.values():
            if view.isVisible():
                view.reload()

    def mark_seen(self) -> None:
        """The rep has seen the list: no contact's activity is new any more."""
        self.model.mark_seen()

    def open_record(self, email: str) -> RecordView:
        """Show the record of ``email`` (raising it if it is open already); what that
        contact did is no longer new in the list."""
        key = email.strip().lower()
        self.model.mark_seen(key)
        view = self.record_views.get(key)
        if view is None:
            view = self._record_factory(key)
            view.saved.connect(lambda _email: self.refresh())
            self.record_views[key] = view
        view.show()
        view.raise_()
        view.activateWindow()
        self.recordOpened.emit(key)
        return view

    def selected_contacts(self) -> list[Contact]:
        """The contacts whose rows are selected, in table order."""
        rows = sorted(self.table.selectionModel().selectedRows(), key=lambda i: i.row())
        found = (index.data(CONTACT_ROLE) for index in rows)
        return [contact for contact in found if contact is not None]

    def add_selected_to_sequence(self) -> None:
        """Enrol the selected contacts in a sequence; say what happened under the table."""
        contacts = self.selected_contacts()
        if self._add_to_sequence is None or not contacts:
            return
        result = self._add_to_sequence(self, contacts)
        if result is None:
            return
        self.note.setText(result.message)
        self.note.setStyleSheet("" if result.ok else "color: #b00020;")
        self.note.setVisible(True)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop background reads here and in open records (before the store closes)."""
        for view in self.record_views.values():
            view.shutdown(timeout_ms)
        self._clock.stop()
        self.model.close(timeout_ms)

    # ------------------------------------------------------------ internals

    def _lay_out(self) -> None:
        bar = QHBoxLayout()
        bar.addWidget(self.search, 3)
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.sequence_button)
        bar.addStretch(1)
        bar.addWidget(self.status)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.note)

    def _setup_table(self) -> None:
        table = self.table
        setup_read_only_table(table, COLUMN_WIDTHS.items())
        table.setSortingEnabled(True)
        table.sortByColumn(Column.LAST_ENGAGEMENT, Qt.SortOrder.DescendingOrder)
        table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        # Several contacts at once go into a sequence (Ctrl/Shift-click).
        table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)

    def _selection_changed(self, *_: object) -> None:
        self.sequence_button.setEnabled(self.table.selectionModel().hasSelection())

    def _search_changed(self, text: str) -> None:
        self.proxy.set_text(text)
        self._update_status()

    def _update_status(self, *_: object) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        new = self.model.new_count
        tr = self._tr
        text = (tr.n("{count} contact", "{count} contacts", total) if shown == total
                else tr.n("{shown} of {count} contact", "{shown} of {count} contacts", total,
                          shown=tr.number(shown)))
        if new:
            text = tr.n("{text} · {count} with new activity", "{text} · {count} with new activity",
                        new, text=text)
        self.status.setText(text)
        self.setWindowTitle(
            tr.n("Contacts ({count} new) — MailBeacon", "Contacts ({count} new) — MailBeacon", new)
            if new else tr.t(TITLE)
        )
        empty = shown == 0 and not self.model.loading
        self.empty.setText(tr.t(NO_CONTACTS if total == 0 else NO_MATCH))
        self.stack.setCurrentWidget(self.empty if empty else self.table)

    def _double_clicked(self, index: AnyIndex) -> None:
        contact = index.data(CONTACT_ROLE)
        if contact is not None:
            self.open_record(contact.email)
