"""The activity feed window: every open, click, reply and failure, newest first.

Filters: the event type, "Show filtered" (bot, proxy and self events, hidden by
default, shown greyed with the reason for their verdict) with a verdict choice,
and a search over subject and contact. Double-clicking a row asks for the
contact's record (``openRecord``). Everything from the records is shown as plain
text.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.agent.records.model import ActivityRow
from mailbeacon.core.events import NOT_HUMAN, EventType, Verdict
from mailbeacon.tray.views.activity.model import (
    PAGE_SIZE,
    ActivityModel,
    ActivityQuery,
    Column,
    FeedFilter,
    type_text,
    when_text,
    who_text,
)
from mailbeacon.tray.views.tables import setup_read_only_table

SEARCH_DELAY_MS = 250  # typing pauses this long before the search runs

TYPE_CHOICES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("All types", ()),
    ("Opens", (EventType.OPEN,)),
    ("Clicks", (EventType.CLICK,)),
    ("Replies", (EventType.REPLY,)),
    ("Delivery failures", (EventType.DELIVERY_FAILED,)),
)
VERDICT_CHOICES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Any verdict", ()),
    ("Human", (Verdict.HUMAN,)),
    ("Bot", (Verdict.BOT,)),
    ("Proxy", (Verdict.PROXY,)),
    ("Self", (Verdict.SELF,)),
    ("Not human", NOT_HUMAN),
)
COLUMN_WIDTHS = {
    Column.WHEN: 140,
    Column.TYPE: 110,
    Column.WHO: 180,
    Column.EMAIL: 220,
    Column.DETAIL: 200,
    Column.VERDICT: 65,
}


class ActivityWindow(QWidget):
    """The feed with its filters. ``openRecord(email_id, contact)`` on double-click:
    ``email_id`` is -1 when the event has no known email, ``contact`` is empty when
    the event is anonymous ("Someone")."""

    openRecord = Signal(int, str)

    def __init__(
        self,
        query: ActivityQuery,
        *,
        model: ActivityModel | None = None,
        page_size: int = PAGE_SIZE,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Activity — MailBeacon")
        self.resize(1100, 600)
        self.model = model or ActivityModel(query, page_size=page_size, parent=self)

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search subject or contact")
        self.search.setClearButtonEnabled(True)
        self.type_box = _combo(TYPE_CHOICES)
        self.show_filtered = QCheckBox("Show filtered")
        self.show_filtered.setToolTip(
            "Also show opens and clicks that no person made (scanners, image proxies, "
            "your own), with the reason for each verdict"
        )
        self.verdict_box = _combo(VERDICT_CHOICES)
        self.verdict_box.setEnabled(False)
        self.status = QLabel("Loading…")
        self.status.setTextFormat(Qt.TextFormat.PlainText)

        self.table = QTableView()
        self.table.setModel(self.model)
        self._setup_table()

        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setMaximumHeight(96)
        self.details.setPlaceholderText("Select an event to see its details.")

        bar = QHBoxLayout()
        bar.addWidget(self.search, 3)
        bar.addWidget(self.type_box)
        bar.addWidget(self.show_filtered)
        bar.addWidget(self.verdict_box)
        bar.addStretch(1)
        bar.addWidget(self.status)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.details)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.apply_filters)
        self.search.textChanged.connect(self._search_timer.start)
        self.search.returnPressed.connect(self.apply_filters)
        self.type_box.currentIndexChanged.connect(self.apply_filters)
        self.show_filtered.toggled.connect(self._show_filtered_toggled)
        self.verdict_box.currentIndexChanged.connect(self.apply_filters)
        self.table.doubleClicked.connect(self._double_clicked)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        self.model.totalChanged.connect(self._update_status)
        self.model.loadingChanged.connect(self._update_status)
        self.model.loadFailed.connect(self.status.setText)

    def feed_filter(self) -> FeedFilter:
        """The filter the widgets describe."""
        show_filtered = self.show_filtered.isChecked()
        return FeedFilter(
            types=TYPE_CHOICES[self.type_box.currentIndex()][1],
            show_filtered=show_filtered,
            verdicts=VERDICT_CHOICES[self.verdict_box.currentIndex()][1] if show_filtered else (),
            text=self.search.text(),
        )

    def apply_filters(self) -> None:
        """Show what the widgets select now (the search without waiting for the pause)."""
        self._search_timer.stop()
        self.model.set_filter(self.feed_filter())
        self._update_status()

    def refresh(self) -> None:
        """New events were stored: show them at the top."""
        self.model.refresh()

    def event_added(self, *_event: object) -> None:
        """For signal connections carrying the new event."""
        self.model.refresh()

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop the model's queries (before the store closes)."""
        self.model.close(timeout_ms)

    # ------------------------------------------------------------ internals

    def _setup_table(self) -> None:
        table = self.table
        setup_read_only_table(table, COLUMN_WIDTHS.items())
        table.setSortingEnabled(False)  # the store orders newest first
        table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)

    def _show_filtered_toggled(self, checked: bool) -> None:
        self.verdict_box.setEnabled(checked)
        self.apply_filters()

    def _update_status(self, *_: object) -> None:
        total = self.model.total
        searching = bool(self.model.feed.needle())
        if total < 0:
            shown = self.model.rowCount()
            self.status.setText(
                f"Searching… {shown:,} found so far" if searching and shown else "Loading…"
            )
            return
        if searching:
            self.status.setText(f"{total:,} {'match' if total == 1 else 'matches'}")
        else:
            self.status.setText(f"{total:,} {'event' if total == 1 else 'events'}")

    def _double_clicked(self, index: QModelIndex | QPersistentModelIndex) -> None:
        row = self.model.row_at(index)
        if row is None:
            return
        event = row.event
        contact = "" if event.anonymous or not event.contact else event.contact
        self.openRecord.emit(event.email_id if event.email_id is not None else -1, contact)

    def _current_changed(
        self, current: QModelIndex | QPersistentModelIndex, _previous: object
    ) -> None:
        row = self.model.row_at(current)
        self.details.setPlainText(details_text(row) if row is not None else "")


def details_text(row: ActivityRow) -> str:
    """Everything about one event, as plain text lines."""
    event = row.event
    lines = [
        f"{type_text(row)} — {when_text(event.at)} — {who_text(row)}",
        f"Email: {row.subject if row.subject is not None else '(unknown)'}",
        f"Verdict: {event.verdict}" + (f" — {event.reason}" if event.reason else ""),
    ]
    if event.url:
        lines.append(f"URL: {event.url}")
    if event.ip or event.user_agent:
        lines.append(f"From: {event.ip or '?'}  {event.user_agent}")
    return "\n".join(lines)


def _combo(choices: tuple[tuple[str, tuple[str, ...]], ...]) -> QComboBox:
    box = QComboBox()
    for label, _value in choices:
        box.addItem(label)
    return box
