"""The contacts as a Qt table model, read off the UI thread.

A rep has hundreds or a few thousand contacts, not 100,000 events: the model
reads them all in one worker call (``refresh()`` reads again) and the window
sorts and searches them through a ``QSortFilterProxyModel`` (``SORT_ROLE``).
The compose window completes addresses from the same model (``COMPLETION_ROLE``:
``Name <address>``). Everything is plain text. The last open, click and engagement
read like the activity feed ("5 min ago", "yesterday 14:02"), the full local time
on hover; they sort by the stored UTC time.

Unread (issue 20): a contact whose last engagement is newer than when the rep last
saw it (the first read is the baseline, as in the feed) is bold and counted in
``new_count`` until ``mark_seen`` — for that contact when its record is opened,
for everyone when the rep has seen the list.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, tzinfo
from enum import IntEnum
from typing import Any, Protocol

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QFont, QGuiApplication

from mailbeacon.agent.records.model import Contact
from mailbeacon.agent.sending.compose_message import format_address
from mailbeacon.core.language import ENGLISH, Language, mark
from mailbeacon.tray.threads.workers import Worker
from mailbeacon.tray.views.activity.when import full_when, relative_when, utc_now
from mailbeacon.tray.views.contacts.lawful import basis_label
from mailbeacon.tray.views.tables import ROW_ROLE, SORT_ROLE, AnyIndex, RowTableModel

log = logging.getLogger(__name__)

CONTACT_ROLE = ROW_ROLE
"""The row's ``Contact``."""
COMPLETION_ROLE = Qt.ItemDataRole.UserRole + 3
"""``Name <address>`` (or the bare address), for address completion."""
SEARCH_ROLE = Qt.ItemDataRole.UserRole + 4
"""Name, address and company in one case-folded string, for the search box."""

NO_BASIS = "—"


class ContactsSource(Protocol):
    """What the model reads; ``RecordsStore`` is one."""

    def contacts(self, limit: int | None = ..., offset: int = ...) -> list[Contact]:
        """Every contact."""
        ...


class Column(IntEnum):
    """The columns, in order."""

    NAME = 0
    EMAIL = 1
    COMPANY = 2
    LAST_OPEN = 3
    LAST_CLICK = 4
    LAST_ENGAGEMENT = 5
    LAWFUL_BASIS = 6


HEADERS = (mark("Name"), mark("Email"), mark("Company"), mark("Last open"),
           mark("Last click"), mark("Last engagement"), mark("Lawful basis"))

_CELLS: dict[int, Callable[[Contact], str]] = {
    Column.NAME: lambda c: c.name,
    Column.EMAIL: lambda c: c.email,
    Column.COMPANY: lambda c: c.company,
}
_TIMES: dict[int, Callable[[Contact], str | None]] = {
    Column.LAST_OPEN: lambda c: c.last_open,
    Column.LAST_CLICK: lambda c: c.last_click,
    Column.LAST_ENGAGEMENT: lambda c: c.last_engagement,
}
_SORTS: dict[int, Callable[[Contact], str]] = {
    Column.NAME: lambda c: (c.name or c.email).casefold(),
    Column.EMAIL: lambda c: c.email,
    Column.COMPANY: lambda c: c.company.casefold(),
    Column.LAST_OPEN: lambda c: c.last_open or "",
    Column.LAST_CLICK: lambda c: c.last_click or "",
    Column.LAST_ENGAGEMENT: lambda c: c.last_engagement or "",
    Column.LAWFUL_BASIS: lambda c: (c.lawful_basis or "").casefold(),
}


def completion_text(contact: Contact) -> str:
    """How the contact is offered in an address field."""
    return format_address(contact.name, contact.email)


_WHOLE_ROW: dict[int, Callable[[Contact], object]] = {
    COMPLETION_ROLE: completion_text,
    SEARCH_ROLE: lambda c: f"{c.name}\n{c.email}\n{c.company}".casefold(),
}


class ContactsModel(RowTableModel[Contact]):
    """Every contact, most recently engaged first until the view sorts otherwise.

    Signals: ``loaded(int rows)`` after each read; ``loadFailed(str)`` with a
    message for the rep; ``loadingChanged(bool)``; ``newCountChanged(int)`` the
    contacts with activity the rep has not seen. ``now()`` is the clock "5 min
    ago" is measured from, ``tz`` the zone times are shown in (None: local).
    """

    loaded = Signal(int)
    loadFailed = Signal(str)
    loadingChanged = Signal(bool)
    newCountChanged = Signal(int)

    def __init__(
        self,
        source: ContactsSource,
        *,
        worker: Worker | None = None,
        now: Callable[[], datetime] = utc_now,
        tz: tzinfo | None = None,
        parent: QObject | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(tuple(tr.t(h) for h in HEADERS), parent)
        self._tr = tr
        self._source = source
        self._now = now
        self._tz = tz
        self._worker = worker or Worker(1, self)
        self._generation = 0
        self._loading = False
        # Last engagement per address when the rep last saw it; None until the first
        # read, which is the baseline (what was there before is not news).
        self._seen: dict[str, str] | None = None
        self._new_count = 0
        self._new_font = QFont(QGuiApplication.font())
        self._new_font.setBold(True)
        self.refresh()

    @property
    def worker(self) -> Worker:
        """The worker the reads run on."""
        return self._worker

    @property
    def loading(self) -> bool:
        """True while a read runs."""
        return self._loading

    def refresh(self) -> None:
        """Read the contacts again (a contact changed, or new ones came)."""
        self._generation += 1
        generation = self._generation
        self._set_loading(True)
        self._worker.submit(
            self._source.contacts,
            lambda contacts: self._read(generation, contacts),
            lambda error: self._failed(generation, error),
        )

    def contact_at(self, index: AnyIndex) -> Contact | None:
        """The contact shown at ``index`` (of this model)."""
        return self.row_at(index)

    def contact_by_email(self, email: str) -> Contact | None:
        """A loaded contact by address (any case)."""
        key = email.strip().lower()
        return next((c for c in self._rows if c.email == key), None)

    @property
    def new_count(self) -> int:
        """Contacts with activity the rep has not seen yet."""
        return self._new_count

    def is_new(self, contact: Contact) -> bool:
        """True when ``contact`` did something since the rep last saw it."""
        engaged = contact.last_engagement
        if self._seen is None or not engaged:
            return False
        return engaged > self._seen.get(contact.email, "")

    def mark_seen(self, email: str | None = None) -> None:
        """The rep saw ``email``'s record (None: the whole list): no longer new."""
        if self._seen is None:
            return
        key = email.strip().lower() if email is not None else None
        for contact in self._rows:
            if (key is None or contact.email == key) and contact.last_engagement:
                self._seen[contact.email] = contact.last_engagement
        self._count_new(repaint=True)

    def times_changed(self) -> None:
        """The clock moved on: "5 min ago" becomes "6 min ago"."""
        if self._rows:
            last = len(self._rows) - 1
            self.dataChanged.emit(self.index(0, Column.LAST_OPEN),
                                  self.index(last, Column.LAST_ENGAGEMENT),
                                  [Qt.ItemDataRole.DisplayRole])

    def close(self, timeout_ms: int = 5000) -> bool:
        """Stop reading (before the store closes)."""
        self._generation += 1
        return self._worker.close(timeout_ms)

    # ------------------------------------------------------------ Qt model

    def _display(self, row: Contact, column: int) -> str | None:
        if column == Column.LAWFUL_BASIS:  # a known basis in the rep's words
            return basis_label(row.lawful_basis, self._tr) if row.lawful_basis else NO_BASIS
        cell = _CELLS.get(column)
        return cell(row) if cell is not None else None

    def cell_data(self, row: Contact, column: int, role: int) -> Any:
        time = _TIMES.get(column)
        if time is not None and role == Qt.ItemDataRole.DisplayRole:
            return relative_when(time(row), self._now(), self._tz, self._tr)
        if time is not None and role == Qt.ItemDataRole.ToolTipRole:
            return full_when(time(row), self._tz, self._tr) or None  # our own text
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, column)
        if role == SORT_ROLE:  # times as stored, text case-folded
            sort = _SORTS.get(column)
            return sort(row) if sort is not None else None
        if role == Qt.ItemDataRole.FontRole:
            return self._new_font if self.is_new(row) else None
        whole = _WHOLE_ROW.get(role)
        return whole(row) if whole is not None else None

    def _count_new(self, repaint: bool = False) -> None:
        count = sum(1 for contact in self._rows if self.is_new(contact))
        if repaint and self._rows:  # bold rows turn normal
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self._rows) - 1, len(HEADERS) - 1),
                                  [Qt.ItemDataRole.FontRole])
        if count != self._new_count:
            self._new_count = count
            self.newCountChanged.emit(count)

    # ------------------------------------------------------------ loading

    def _read(self, generation: int, contacts: list[Contact]) -> None:
        if generation != self._generation:
            return
        self.set_rows(contacts)
        if self._seen is None:
            self._seen = {c.email: c.last_engagement for c in contacts if c.last_engagement}
        self._count_new()
        self._set_loading(False)
        self.loaded.emit(len(self._rows))

    def _failed(self, generation: int, error: BaseException) -> None:
        if generation != self._generation:
            return
        log.error("reading the contacts failed: %s", error)
        self._set_loading(False)
        self.loadFailed.emit(self._tr.t("The contacts could not be read: {error}", error=error))

    def _set_loading(self, loading: bool) -> None:
        if loading != self._loading:
            self._loading = loading
            self.loadingChanged.emit(loading)
