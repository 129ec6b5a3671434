"""The reports window: per email, per contact, and human opens and clicks per day.

It shows what ``agent.reports`` computes (only human events count; "Someone" events
count in an email's numbers and the totals, apart, and never per contact) for a
period chosen at the top. The report is read and computed on a ``Worker``. Tables
sort by clicking a header; "Export CSV…" writes the table of the current tab, in
the order shown (times in full: the CSV is read later, elsewhere). Subjects and
names are plain text. Times ("Sent", "Last engagement") read like the activity
feed ("5 min ago", "yesterday 14:02") with the full local time on hover, and sort
by the stored UTC time. A period with nothing to report says what to do next
instead of showing empty tables.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.agent.records.reports import (
    Cell,
    Report,
    ReportSource,
    Table,
    build_report,
    contacts_table,
    days_table,
    emails_table,
    last_days,
    read_report_data,
    totals_text,
    write_csv,
)
from mailbeacon.core.language import ENGLISH, Language, mark
from mailbeacon.tray.threads.workers import Worker
from mailbeacon.tray.views.activity.when import CLOCK_MS, full_when, relative_when, utc_now
from mailbeacon.tray.views.labels import empty_state, show_status
from mailbeacon.tray.views.reports.chart import BarChart, Series
from mailbeacon.tray.views.tables import (
    SORT_ROLE,
    RowTableModel,
    fit_headers,
    setup_read_only_table,
)

log = logging.getLogger(__name__)

REFRESH_DELAY_MS = 2000  # new events within this time refresh the report once

PERIODS: tuple[tuple[str, int | None], ...] = (
    (mark("Last 7 days"), 7),
    (mark("Last 30 days"), 30),
    (mark("Last 90 days"), 90),
    (mark("Last 12 months"), 365),
    (mark("All time"), None),
)
DEFAULT_PERIOD = 1
OPEN_COLOR = QColor("#1f6fb4")
OPEN_SOMEONE_COLOR = QColor("#9ec5e8")
CLICK_COLOR = QColor("#e07b12")
CLICK_SOMEONE_COLOR = QColor("#f6c58f")
WHEN_HEADERS = frozenset({"Sent", "Last engagement"})
"""Columns holding a stored time; their cells' sort value is that UTC ISO time."""
TEXT_ROLE = Qt.ItemDataRole.UserRole + 3
"""A cell's text as the report computed it (full times), for the CSV export."""
NOTHING_YET = mark(
    "Nothing to report yet. Send an email from your mail client or Compose; its opens, "
    "clicks and replies are counted here."
)
NOTHING_IN_PERIOD = mark(
    "No emails, opens or clicks in this period. Choose a longer period above, or send an "
    "email from your mail client or Compose."
)

ChooseCsvPath = Callable[[QWidget, str], str | None]


def choose_csv_dialog(parent: QWidget, suggested: str, tr: Language = ENGLISH) -> str | None:
    """Ask where to save a CSV file."""
    path, _filter = QFileDialog.getSaveFileName(
        parent, tr.t("Export CSV"), suggested, tr.t("CSV files (*.csv);;All files (*)")
    )
    return path or None


class ReportTableModel(RowTableModel[tuple[Cell, ...]]):
    """One report table: plain-text cells, sorted by ``SORT_ROLE``, numbers on the right.

    Cells of the ``times`` columns (by header) show their stored time relative to
    ``now()`` in ``tz``, the full time on hover; ``TEXT_ROLE`` is the report's text.
    """

    def __init__(
        self,
        table: Table | None = None,
        parent: QObject | None = None,
        *,
        times: Collection[str] = WHEN_HEADERS,
        now: Callable[[], datetime] = utc_now,
        tz: tzinfo | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(parent=parent)
        self._tr = tr
        self._table = table or Table((), ())
        self._rows = list(self._table.rows)
        self._times = frozenset(times)
        self._now = now
        self._tz = tz
        self._time_columns = self._find_time_columns()

    @property
    def table(self) -> Table:
        """The table shown."""
        return self._table

    @property
    def headers(self) -> Sequence[str]:
        """The table's own column titles."""
        return self._table.headers

    def set_table(self, table: Table) -> None:
        """Show ``table``."""
        self.beginResetModel()
        self._table = table
        self._rows = list(table.rows)
        self._time_columns = self._find_time_columns()
        self.endResetModel()

    def times_changed(self) -> None:
        """The clock moved on: "5 min ago" becomes "6 min ago"."""
        last = len(self._rows) - 1
        for column in self._time_columns if last >= 0 else ():
            self.dataChanged.emit(self.index(0, column), self.index(last, column),
                                  [Qt.ItemDataRole.DisplayRole])

    def _find_time_columns(self) -> frozenset[int]:
        return frozenset(c for c, title in enumerate(self._table.headers) if title in self._times)

    def cell_data(self, row: tuple[Cell, ...], column: int, role: int) -> Any:
        if not 0 <= column < len(row):
            return None
        cell = row[column]
        if role == SORT_ROLE:
            return cell.sort
        if role == Qt.ItemDataRole.TextAlignmentRole and isinstance(cell.sort, int | float):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return self._text(cell, column, role)

    def _text(self, cell: Cell, column: int, role: int) -> str | None:
        stored = cell.sort if column in self._time_columns and isinstance(cell.sort, str) else ""
        if role == Qt.ItemDataRole.ToolTipRole:
            return full_when(stored, self._tz, self._tr) if stored else None  # our own text
        if role == Qt.ItemDataRole.DisplayRole and stored:
            return relative_when(stored, self._now(), self._tz, self._tr)
        if role in (Qt.ItemDataRole.DisplayRole, TEXT_ROLE):
            return cell.text
        return None


class _TableTab(QWidget):
    """A sortable view of one report table (times relative to ``now()``, in ``tz``)."""

    def __init__(
        self,
        name: str,
        parent: QWidget | None = None,
        *,
        now: Callable[[], datetime] = utc_now,
        tz: tzinfo | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(parent)
        self.name = name
        self.model = ReportTableModel(
            parent=self, now=now, tz=tz, tr=tr, times={tr.t(h) for h in WHEN_HEADERS}
        )
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setSourceModel(self.model)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # the report's own order
        setup_read_only_table(self.view)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)

    def shown_rows(self) -> tuple[tuple[str, ...], list[list[str]]]:
        """Headers and the rows' texts (times in full), in the order shown."""
        proxy = self.proxy
        headers = tuple(
            str(proxy.headerData(c, Qt.Orientation.Horizontal)) for c in range(proxy.columnCount())
        )
        rows = [
            [str(proxy.index(r, c).data(TEXT_ROLE)) for c in range(proxy.columnCount())]
            for r in range(proxy.rowCount())
        ]
        return headers, rows


class ReportsWindow(QWidget):
    """Reports for a chosen period.

    Signals: ``loaded()`` each time a report is shown; ``loadFailed(str)``;
    ``exported(str path)`` after a CSV file was written.
    """

    loaded = Signal()
    loadFailed = Signal(str)
    exported = Signal(str)

    def __init__(
        self,
        source: ReportSource,
        *,
        worker: Worker | None = None,
        tz: tzinfo | None = None,
        now: Callable[[], datetime] = utc_now,
        choose_csv_path: ChooseCsvPath | None = None,
        parent: QWidget | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(parent)
        self._tr = tr
        self.setWindowTitle(tr.t("Reports — MailBeacon"))
        self.resize(1000, 640)
        self._source = source
        self._worker = worker or Worker(1, self)
        self._tz = tz
        self._now = now
        self._choose_csv_path: ChooseCsvPath = choose_csv_path or (
            lambda parent, suggested: choose_csv_dialog(parent, suggested, tr)
        )
        self._generation = 0
        self.report: Report | None = None

        self.period_box = QComboBox()
        for label, _days in PERIODS:
            self.period_box.addItem(tr.t(label))
        self.period_box.setCurrentIndex(DEFAULT_PERIOD)
        self.refresh_button = QPushButton(tr.t("&Refresh"))
        self.export_button = QPushButton(tr.t("&Export CSV…"))
        self.export_button.setEnabled(False)
        self.totals = QLabel(tr.t("Loading…"))
        self.totals.setTextFormat(Qt.TextFormat.PlainText)
        self.totals.setWordWrap(True)
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.emails_tab = _TableTab("emails", now=now, tz=tz, tr=tr)
        self.contacts_tab = _TableTab("contacts", now=now, tz=tz, tr=tr)
        self.days_tab = _TableTab("days", now=now, tz=tz, tr=tr)
        self.chart = BarChart(tr.t("No human opens or clicks in this period."))
        self.tabs = QTabWidget()
        self.stack, self.empty = empty_state(self.tabs)
        self._lay_out()

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_DELAY_MS)
        self._refresh_timer.timeout.connect(self.refresh)
        self._clock = QTimer(self)
        self._clock.setInterval(CLOCK_MS)
        for tab in (self.emails_tab, self.contacts_tab, self.days_tab):
            self._clock.timeout.connect(tab.model.times_changed)
        self._clock.start()
        self.period_box.currentIndexChanged.connect(lambda _index: self.refresh())
        self.refresh_button.clicked.connect(self.refresh)
        self.export_button.clicked.connect(self.export_csv)
        self.refresh()

    def _lay_out(self) -> None:
        per_day = QSplitter(Qt.Orientation.Vertical)
        per_day.addWidget(self.chart)
        per_day.addWidget(self.days_tab)
        per_day.setStretchFactor(0, 3)
        per_day.setStretchFactor(1, 1)
        tr = self._tr
        self.tabs.addTab(self.emails_tab, tr.t("Per &email"))
        self.tabs.addTab(self.contacts_tab, tr.t("Per &contact"))
        self.tabs.addTab(per_day, tr.t("Per &day"))
        bar = QHBoxLayout()
        bar.addWidget(QLabel(tr.t("Period:")))
        bar.addWidget(self.period_box)
        bar.addWidget(self.refresh_button)
        bar.addStretch(1)
        bar.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.totals)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.status)

    # ------------------------------------------------------------ public

    @property
    def worker(self) -> Worker:
        """The worker the report is computed on."""
        return self._worker

    def current_tab(self) -> _TableTab:
        """The table the Export button writes."""
        index = self.tabs.currentIndex()
        return (self.emails_tab, self.contacts_tab, self.days_tab)[max(0, index)]

    def refresh(self) -> None:
        """Read and compute the report for the chosen period again."""
        self._refresh_timer.stop()
        self._generation += 1
        generation = self._generation
        days = PERIODS[self.period_box.currentIndex()][1]
        source, tz, now = self._source, self._tz, self._now()
        period = last_days(days, now, tz)
        today = now.astimezone(tz).date()

        def compute() -> Report:
            return build_report(read_report_data(source, period), period, today, tz)

        self._set_status(self._tr.t("Computing…"))
        self._worker.submit(
            compute,
            lambda report: self._show(generation, report),
            lambda error: self._failed(generation, error),
        )

    def event_added(self, *_event: object) -> None:
        """New events were stored: refresh soon (bursts refresh once)."""
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def export_csv(self) -> None:
        """Write the current tab's table, as shown, to a CSV file the rep chooses."""
        tab = self.current_tab()
        suggested = f"mailbeacon-{tab.name}-{self._now().astimezone(self._tz):%Y-%m-%d}.csv"
        chosen = self._choose_csv_path(self, suggested)
        if not chosen:
            return
        path = Path(chosen)
        if not path.suffix:
            path = path.with_suffix(".csv")
        headers, rows = tab.shown_rows()
        self._worker.submit(
            lambda: write_csv(path, headers, rows),
            lambda _none: self._exported(path),
            lambda error: self._set_status(
                self._tr.t("The CSV file was not written: {error}", error=error), True
            ),
        )

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop background work (before the store closes)."""
        self._generation += 1
        self._refresh_timer.stop()
        self._clock.stop()
        self._worker.close(timeout_ms)

    # ------------------------------------------------------------ internals

    def _show(self, generation: int, report: Report) -> None:
        if generation != self._generation:
            return
        self.report = report
        tr = self._tr
        self.totals.setText(totals_text(report.totals, tr))
        self.emails_tab.model.set_table(emails_table(report, self._tz, tr))
        self.contacts_tab.model.set_table(contacts_table(report, self._tz, tr))
        self.days_tab.model.set_table(days_table(report, tr))
        # Clicks, like Opens, may read "3 (1 by Someone)".
        for tab, widths in ((self.emails_tab, (120, 240, 75, 125, 75, 125, 60)),
                            (self.contacts_tab, (170, 210, 150, 60, 60, 60, 60)),
                            (self.days_tab, (110, 80, 130, 80))):
            for column, width in enumerate(widths):
                tab.view.setColumnWidth(column, width)
            fit_headers(tab.view)
        self._show_chart(report)
        totals = report.totals
        empty = not (report.emails or totals.opens or totals.clicks or totals.replies
                     or totals.filtered)
        all_time = PERIODS[self.period_box.currentIndex()][1] is None
        self.empty.setText(tr.t(NOTHING_YET if all_time else NOTHING_IN_PERIOD))
        self.stack.setCurrentWidget(self.empty if empty else self.tabs)
        self.export_button.setEnabled(True)
        self._set_status("")
        self.loaded.emit()

    def _show_chart(self, report: Report) -> None:
        days = report.days
        tr = self._tr
        labels = [tr.short_day(d.day) for d in days]
        self.chart.set_data(labels, [
            Series(tr.t("Opens"), tuple(d.opens for d in days), OPEN_COLOR, 0),
            Series(tr.t("Opens by Someone"), tuple(d.anonymous_opens for d in days),
                   OPEN_SOMEONE_COLOR, 0),
            Series(tr.t("Clicks"), tuple(d.clicks for d in days), CLICK_COLOR, 1),
            Series(tr.t("Clicks by Someone"), tuple(d.anonymous_clicks for d in days),
                   CLICK_SOMEONE_COLOR, 1),
        ])

    def _failed(self, generation: int, error: BaseException) -> None:
        if generation != self._generation:
            return
        log.error("computing the report failed: %s", error)
        message = self._tr.t("The report could not be computed: {error}", error=error)
        self._set_status(message, True)
        self.loadFailed.emit(message)

    def _exported(self, path: Path) -> None:
        self._set_status(self._tr.t("Exported to {path}", path=path))
        self.exported.emit(str(path))

    def _set_status(self, text: str, error: bool = False) -> None:
        show_status(self.status, text, error)
