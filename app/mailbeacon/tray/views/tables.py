"""What every read-only table of the app shares: the row model, header text and view setup.

``RowTableModel`` is the plumbing the activity feed, the contacts, a contact's
timeline and the report tables have in common: one row per item of a list,
columns titled by ``headers``, ``ROW_ROLE`` answering the row's item, and a
model reset when a new list comes. Each model says only what its cells show
(``cell_data``); how rows arrive (a page at a time, all at once) stays its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QGuiApplication, QPalette
from PySide6.QtWidgets import QAbstractItemView, QTableView

AnyIndex = QModelIndex | QPersistentModelIndex

ROW_ROLE = Qt.ItemDataRole.UserRole + 1
"""Data role returning the row's item (an ``ActivityRow``, a ``Contact``, ...)."""
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
"""Data role returning a value that sorts the column (for a ``QSortFilterProxyModel``)."""

RowT = TypeVar("RowT")


class RowTableModel(QAbstractTableModel, Generic[RowT]):
    """A flat, read-only table over ``self._rows``; subclasses say what a cell shows."""

    def __init__(self, headers: Sequence[str] = (), parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._headers: Sequence[str] = headers
        self._rows: list[RowT] = []

    @property
    def headers(self) -> Sequence[str]:
        """The column titles, left to right."""
        return self._headers

    def row_at(self, index: AnyIndex) -> RowT | None:
        """The item shown at ``index`` (of this model), or None."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        return self._rows[index.row()]

    def set_rows(self, rows: Iterable[RowT]) -> None:
        """Show ``rows`` instead of what was shown."""
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def cell_data(self, row: RowT, column: int, role: int) -> Any:
        """What ``row`` shows in ``column`` for ``role`` (None: nothing)."""
        return None

    # ------------------------------------------------------------ Qt model

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.headers)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = self.row_at(index)
        if row is None:
            return None
        if role == ROW_ROLE:
            return row
        return self.cell_data(row, index.column(), role)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        return header_text(self.headers, section, orientation, role)


def greyed_brush() -> QBrush:
    """The text colour of disabled widgets: rows no person made (bots, proxies, self)."""
    return QBrush(
        QGuiApplication.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
    )


def header_text(
    headers: Sequence[str], section: int, orientation: Qt.Orientation, role: int
) -> str | None:
    """A model's ``headerData``: column titles across the top, nothing else."""
    if (
        role == Qt.ItemDataRole.DisplayRole
        and orientation == Qt.Orientation.Horizontal
        and 0 <= section < len(headers)
    ):
        return headers[section]
    return None


def setup_read_only_table(table: QTableView, widths: Iterable[tuple[int, int]] = ()) -> None:
    """Whole-row selection, no editing, no wrapping, compact rows, no row numbers."""
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.setTextElideMode(Qt.TextElideMode.ElideRight)
    vertical = table.verticalHeader()
    vertical.setVisible(False)
    vertical.setDefaultSectionSize(table.fontMetrics().height() + 8)
    table.horizontalHeader().setStretchLastSection(True)
    for column, width in widths:
        table.setColumnWidth(column, width)
    fit_headers(table)


def fit_headers(table: QTableView) -> None:
    """Widen any column narrower than its title, so no title is cut (a translation is
    often longer than the English the widths were chosen for)."""
    header = table.horizontalHeader()
    for column in range(header.count()):
        needed = header.sectionSizeFromContents(column).width()
        if header.sectionSize(column) < needed:
            table.setColumnWidth(column, needed)
