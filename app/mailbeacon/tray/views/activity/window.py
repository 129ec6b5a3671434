"""The activity feed window: every open, click, reply and failure, newest first.

Filters: the event type, "Show filtered" (bot, proxy and self events, hidden by
default, shown greyed with the reason for their verdict) with a verdict choice,
and a search over subject and contact. Double-clicking a row asks for the
contact's record (``openRecord``). Everything from the records is shown as plain
text.

A rep reads who, what, when and where; what the agent decided about each event
(verdict, reason) and the reader's IP address and user agent are behind "Show
details" (off by default), with the selected event's full description below
the table. Events that arrived since the rep last saw the window are bold and
counted ("3 new", also in the window title) until the window is hidden or loses
focus after having it. An empty feed says what to do next.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QEvent, QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent
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
from mailbeacon.core.language import ENGLISH, Language, mark
from mailbeacon.core.reasons import say as say_reason
from mailbeacon.tray.views.activity.model import (
    DETAIL_COLUMNS,
    PAGE_SIZE,
    ActivityModel,
    ActivityQuery,
    Column,
    FeedFilter,
    type_text,
    verdict_text,
    who_text,
)
from mailbeacon.tray.views.activity.when import CLOCK_MS, full_when, utc_now
from mailbeacon.tray.views.labels import empty_state
from mailbeacon.tray.views.tables import setup_read_only_table

SEARCH_DELAY_MS = 250  # typing pauses this long before the search runs
TITLE = mark("Activity — MailBeacon")
EMPTY_FEED = mark(
    "No activity yet. Send an email from your mail client or Compose; opens and clicks "
    "appear here."
)
EMPTY_FILTER = mark(
    "Nothing matches. Clear the search, choose All types or tick Show filtered to see more."
)

TYPE_CHOICES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (mark("All types"), ()),
    (mark("Opens"), (EventType.OPEN,)),
    (mark("Clicks"), (EventType.CLICK,)),
    (mark("Replies"), (EventType.REPLY,)),
    (mark("Delivery failures"), (EventType.DELIVERY_FAILED,)),
)
VERDICT_CHOICES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (mark("Any verdict"), ()),
    (mark("Human"), (Verdict.HUMAN,)),
    (mark("Bot"), (Verdict.BOT,)),
    (mark("Proxy"), (Verdict.PROXY,)),
    (mark("Self"), (Verdict.SELF,)),
    (mark("Not human"), NOT_HUMAN),
)
COLUMN_WIDTHS = {
    Column.WHEN: 120,
    Column.TYPE: 110,
    Column.WHO: 180,
    Column.EMAIL: 330,
    Column.DETAIL: 220,
    Column.VERDICT: 65,
    Column.REASON: 200,
    Column.IP: 110,
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
        now: Callable[[], datetime] = utc_now,
        parent: QWidget | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(parent)
        self._tr = tr
        self.setWindowTitle(tr.t(TITLE))
        self.resize(1100, 600)
        self.model = model or ActivityModel(
            query, page_size=page_size, now=now, parent=self, tr=tr
        )
        self._had_focus = False

        self.search = QLineEdit()
        self.search.setPlaceholderText(tr.t("Search subject or contact"))
        self.search.setClearButtonEnabled(True)
        self.type_box = _combo(TYPE_CHOICES, tr)
        self.show_filtered = QCheckBox(tr.t("Show filtered"))
        self.show_filtered.setToolTip(
            tr.t(
                "Also show opens and clicks that no person made (scanners, image proxies, "
                "your own), with the reason for each verdict"
            )
        )
        self.verdict_box = _combo(VERDICT_CHOICES, tr)
        self.verdict_box.setEnabled(False)
        self.show_details = QCheckBox(tr.t("Show details"))
        self.show_details.setToolTip(
            tr.t(
                "Also show why each event counts as a person or not (verdict and reason), "
                "and the reader's IP address and browser"
            )
        )
        self.status = QLabel(tr.t("Loading…"))
        self.status.setTextFormat(Qt.TextFormat.PlainText)

        self.table = QTableView()
        self.table.setModel(self.model)
        self._setup_table()
        self.stack, self.empty = empty_state(self.table)

        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setMaximumHeight(96)
        self.details.setPlaceholderText(tr.t("Select an event to see its details."))
        self._show_details(False)
        self._lay_out()
        self._connect()

    def _lay_out(self) -> None:
        bar = QHBoxLayout()
        bar.addWidget(self.search, 3)
        bar.addWidget(self.type_box)
        bar.addWidget(self.show_filtered)
        bar.addWidget(self.verdict_box)
        bar.addWidget(self.show_details)
        bar.addStretch(1)
        bar.addWidget(self.status)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.details)

        self._clock = QTimer(self)
        self._clock.setInterval(CLOCK_MS)
        self._clock.timeout.connect(self.model.times_changed)
        self._clock.start()

    def _connect(self) -> None:
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.apply_filters)
        self.search.textChanged.connect(self._search_timer.start)
        self.search.returnPressed.connect(self.apply_filters)
        self.type_box.currentIndexChanged.connect(self.apply_filters)
        self.show_filtered.toggled.connect(self._show_filtered_toggled)
        self.verdict_box.currentIndexChanged.connect(self.apply_filters)
        self.show_details.toggled.connect(self._show_details)
        self.table.doubleClicked.connect(self._double_clicked)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        self.model.totalChanged.connect(self._update_status)
        self.model.loadingChanged.connect(self._update_status)
        self.model.loadFailed.connect(self.status.setText)
        self.model.newCountChanged.connect(self._update_status)
        self.model.modelReset.connect(self._update_status)
        self.model.rowsInserted.connect(self._update_status)

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
        self._clock.stop()
        self.model.close(timeout_ms)

    def mark_seen(self) -> None:
        """The rep has seen the feed: nothing shown is new any more."""
        self.model.mark_seen()

    def hideEvent(self, event: QHideEvent) -> None:
        """Closing the window is having seen it."""
        self.mark_seen()
        super().hideEvent(event)

    def changeEvent(self, event: QEvent) -> None:
        """Looking at the window and leaving it is having seen it (not merely opening it:
        the bold rows and the count are there to be seen first)."""
        if event.type() == QEvent.Type.ActivationChange:
            if self.isActiveWindow():
                self._had_focus = True
            elif self._had_focus:
                self._had_focus = False
                self.mark_seen()
        super().changeEvent(event)

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

    def _show_details(self, shown: bool) -> None:
        for column in DETAIL_COLUMNS:
            self.table.setColumnHidden(column, not shown)
        self.details.setVisible(shown)

    def _update_status(self, *_: object) -> None:
        total = self.model.total
        searching = bool(self.model.feed.needle())
        new = self.model.new_count
        tr = self._tr
        self.setWindowTitle(
            tr.n("Activity ({count} new) — MailBeacon", "Activity ({count} new) — MailBeacon",
                 new) if new else tr.t(TITLE)
        )
        self._update_empty()
        if total < 0:
            shown = self.model.rowCount()
            self.status.setText(
                tr.n("Searching… {count} found so far", "Searching… {count} found so far", shown)
                if searching and shown else tr.t("Loading…")
            )
            return
        if searching:
            text = tr.n("{count} match", "{count} matches", total)
        else:
            text = tr.n("{count} event", "{count} events", total)
        self.status.setText(
            tr.n("{count} new · {total}", "{count} new · {total}", new, total=text) if new
            else text
        )

    def _update_empty(self) -> None:
        model = self.model
        empty = model.rowCount() == 0 and model.total == 0 and not model.loading
        if empty:
            feed = model.feed
            filtered = bool(feed.types or feed.verdicts or feed.needle())
            self.empty.setText(self._tr.t(EMPTY_FILTER if filtered else EMPTY_FEED))
        self.stack.setCurrentWidget(self.empty if empty else self.table)

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
        self.details.setPlainText(details_text(row, self._tr) if row is not None else "")


def details_text(row: ActivityRow, tr: Language = ENGLISH) -> str:
    """Everything about one event, as plain text lines."""
    event = row.event
    verdict = verdict_text(row, tr) or event.verdict
    lines = [
        f"{type_text(row, tr)} — {full_when(event.at, tr=tr)} — {who_text(row, tr)}",
        tr.t("Email: {subject}",
             subject=row.subject if row.subject is not None else tr.t("(unknown)")),
        tr.t("Verdict: {verdict}", verdict=verdict)
        + (f" — {say_reason(event.reason, tr)}" if event.reason else ""),
    ]
    if event.url:
        lines.append(tr.t("URL: {url}", url=event.url))
    if event.ip or event.user_agent:
        lines.append(tr.t("From: {address}  {agent}", address=event.ip or "?",
                          agent=event.user_agent))
    return "\n".join(lines)


def _combo(choices: tuple[tuple[str, tuple[str, ...]], ...], tr: Language) -> QComboBox:
    box = QComboBox()
    for label, _value in choices:
        box.addItem(tr.t(label))
    return box
