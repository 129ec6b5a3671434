"""The activity feed as a lazy Qt table model over the records store.

Rows come newest first, a page (200 by default) at a time through
``canFetchMore``/``fetchMore``: the model never loads every event. Every query
runs on a ``Worker`` thread, never on the UI thread: the first page of 100,000
events takes ~2 ms, but a rare type filter, a deep page (offset paging walks the
index) or a text search (see below) can take much longer, and the window must
stay responsive meanwhile. Results are applied on the UI thread; a result that
belongs to an older filter (its generation) is dropped.

Text search: ``ActivityFilter`` has no text field, so the search runs in the
worker over the store's pages (``SCAN_CHUNK`` rows at a time, with the type and
verdict filters already applied by SQL) and keeps the rows whose subject,
contact address or contact name contains the text (case-insensitive). It
covers every stored event, not just the rows loaded so far; a search with no
hit reads the whole feed once (off the UI thread, and abandoned as soon as the
filter changes again).

Live updates: ``refresh()`` (also reachable as ``event_added(...)`` to connect
a signal carrying the new event) re-reads the head page and inserts the new rows
at the top; rows whose content changed (a revised verdict) are updated in place,
and if the head no longer lines up with what is shown (rows left the filter),
the model resets to the fresh head.

What a rep reads first: when (relative, "5 min ago", with the full local time
on hover), what, who, which email and where (the reader's device or the clicked
link). The verdict, its reason, the IP address and the user agent come last
(``DETAIL_COLUMNS``), for the window to show behind "Show details".

Unread: events newer than ``seen_id`` (set by the window once the rep saw the
feed) are bold and counted in ``new_count``.

All data is shown as plain text (``DisplayRole`` strings): a subject of
``<b>html</b>`` shows exactly those characters.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any, Protocol

from PySide6.QtCore import QModelIndex, QObject, Qt, Signal
from PySide6.QtGui import QFont, QGuiApplication

from mailbeacon.agent.records.model import ActivityFilter, ActivityRow
from mailbeacon.core.events import HIT_TYPES, EventType, Verdict
from mailbeacon.core.language import ENGLISH, Language, mark
from mailbeacon.core.reasons import say as say_reason
from mailbeacon.core.uainfo import describe
from mailbeacon.core.uainfo import label as device_label
from mailbeacon.tray.threads.workers import Worker
from mailbeacon.tray.views.activity.when import full_when, relative_when, utc_now
from mailbeacon.tray.views.tables import AnyIndex, RowTableModel, greyed_brush

log = logging.getLogger(__name__)

PAGE_SIZE = 200
SCAN_CHUNK = 5000


class ActivityQuery(Protocol):
    """What the feed reads; ``RecordsStore`` is one."""

    def activity(
        self, limit: int | None = ..., offset: int = ..., filters: ActivityFilter | None = ...
    ) -> list[ActivityRow]:
        """Events with their emails, newest first."""
        ...

    def count_events(self, filters: ActivityFilter | None = ...) -> int:
        """How many events match."""
        ...


class Column(IntEnum):
    """The feed's columns, in order."""

    WHEN = 0
    TYPE = 1
    WHO = 2
    EMAIL = 3
    DETAIL = 4
    VERDICT = 5
    REASON = 6
    IP = 7
    USER_AGENT = 8


HEADERS = (mark("When"), mark("What"), mark("Who"), mark("Email"), mark("Where"),
           mark("Verdict"), mark("Reason"), mark("IP address"), mark("User agent"))
DETAIL_COLUMNS = (Column.VERDICT, Column.REASON, Column.IP, Column.USER_AGENT)
"""What the agent decided and from where, for the rep who asks ("Show details")."""
TYPE_LABELS: dict[str, str] = {
    EventType.OPEN: mark("Open"),
    EventType.CLICK: mark("Click"),
    EventType.REPLY: mark("Reply"),
    EventType.DELIVERY_FAILED: mark("Delivery failed"),
}
VERDICT_LABELS: dict[str, str] = {
    Verdict.HUMAN: mark("Human"),
    Verdict.BOT: mark("Bot"),
    Verdict.PROXY: mark("Proxy"),
    Verdict.SELF: mark("Self"),
}
SOMEONE = mark("Someone")
UNKNOWN_EMAIL = mark("(unknown email)")


@dataclass(frozen=True, slots=True)
class FeedFilter:
    """What the feed shows: by default human events of every type."""

    types: tuple[str, ...] = ()
    show_filtered: bool = False  # also bot, proxy and self events
    verdicts: tuple[str, ...] = ()  # with show_filtered: only these (empty: any)
    text: str = ""

    def activity_filter(self) -> ActivityFilter:
        """The part the store filters by itself."""
        verdicts = self.verdicts if self.show_filtered else (Verdict.HUMAN,)
        return ActivityFilter(types=self.types, verdicts=verdicts)

    def needle(self) -> str:
        """The search text as compared (case-folded, trimmed)."""
        return self.text.strip().casefold()


def matches(row: ActivityRow, needle: str) -> bool:
    """True if the subject, contact address or contact name contains ``needle``."""
    if not needle:
        return True
    for text in (row.subject, row.event.contact, row.contact_name):
        if text and needle in text.casefold():
            return True
    return False


@dataclass(slots=True)
class Page:
    """Rows read for one request, and where the next request continues."""

    rows: list[ActivityRow]
    next_offset: int
    exhausted: bool
    total: int | None = None


@dataclass(slots=True)
class _Generation:
    # Read from worker threads to abandon a search scan that no longer matters.
    value: int = 0


def read_page(
    query: ActivityQuery,
    feed: FeedFilter,
    offset: int,
    page_size: int,
    still_wanted: Callable[[], bool] = lambda: True,
    with_total: bool = False,
) -> Page:
    """One page of the feed from ``offset`` (an offset into the store's filtered rows)."""
    filters = feed.activity_filter()
    needle = feed.needle()
    if not needle:
        rows = query.activity(page_size, offset, filters)
        total = query.count_events(filters) if with_total else None
        return Page(rows, offset + len(rows), len(rows) < page_size, total)
    found: list[ActivityRow] = []
    # Bounded: every round moves the offset forward or ends the scan.
    while True:
        chunk = query.activity(SCAN_CHUNK, offset, filters)
        offset += len(chunk)
        found.extend(row for row in chunk if matches(row, needle))
        if len(chunk) < SCAN_CHUNK:
            return Page(found, offset, True)
        if len(found) >= page_size or not still_wanted():
            return Page(found, offset, False)


def when_text(at: str, tr: Language = ENGLISH) -> str:
    """A stored UTC time as the rep's local date and time (``12 Jun 2025, 14:05``)."""
    try:
        return tr.when(datetime.fromisoformat(at))
    except ValueError:
        return at


def type_text(row: ActivityRow, tr: Language = ENGLISH) -> str:
    """``Open``, ``Open (inferred)``, ``Open (possibly forwarded)``, ``Click``, ..."""
    event = row.event
    label = tr.t(TYPE_LABELS[event.type]) if event.type in TYPE_LABELS else event.type
    # The same words as the notification (docs/rep-guide.md); an inferred open can be
    # possibly forwarded too, so neither hides the other.
    notes = [tr.t(n) for n, on in ((mark("inferred"), event.inferred),
                                   (mark("possibly forwarded"), event.possibly_forwarded)) if on]
    if not notes:
        return label
    return tr.t("{what} ({notes})", what=label, notes=", ".join(notes))


def who_text(row: ActivityRow, tr: Language = ENGLISH) -> str:
    """The contact's name or address; ``Someone`` when not known (rules 8, 9); the
    undelivered recipients of a delivery failure."""
    event = row.event
    if event.contact and not event.anonymous:
        return row.contact_name or event.contact
    if event.anonymous or event.type in HIT_TYPES:
        return tr.t(SOMEONE)
    if event.type == EventType.DELIVERY_FAILED:
        recipients = event.details.get("recipients")
        return ", ".join(str(r) for r in recipients) if isinstance(recipients, list) else ""
    return ""


def detail_text(row: ActivityRow, tr: Language = ENGLISH) -> str:
    """Where: the clicked link, or the reader's device ("Outlook on Windows (via Gmail)")."""
    event = row.event
    if event.type == EventType.CLICK:
        return event.url or ""
    if event.type == EventType.OPEN:
        client = device_label(describe(event.user_agent), tr) if event.user_agent else ""
        via = event.details.get("via")
        if via and client:
            return tr.t("{client} (via {proxy})", client=client, proxy=via)
        return str(via or client)
    return ""


def verdict_text(row: ActivityRow, tr: Language = ENGLISH) -> str:
    """The verdict of an open or click; none for what no hit decided (a bounce)."""
    if row.event.type == EventType.DELIVERY_FAILED:
        return ""  # stored with the default verdict, but nobody opened anything
    verdict = row.event.verdict
    return tr.t(VERDICT_LABELS[verdict]) if verdict in VERDICT_LABELS else verdict.capitalize()


def _subject(row: ActivityRow, tr: Language) -> str:
    return row.subject if row.subject is not None else tr.t(UNKNOWN_EMAIL)


# The reason is the classifier's own words (docs/rules.md), stored in English and read
# back here in the rep's language (as stored when it fits no known wording).
_CELLS: dict[int, Callable[[ActivityRow, Language], str]] = {
    Column.WHEN: lambda row, tr: when_text(row.event.at, tr),  # the model shows it relative
    Column.TYPE: type_text,
    Column.WHO: who_text,
    Column.EMAIL: _subject,
    Column.DETAIL: detail_text,
    Column.VERDICT: verdict_text,
    Column.REASON: lambda row, tr: say_reason(row.event.reason, tr),
    Column.IP: lambda row, _tr: row.event.ip or "",
    Column.USER_AGENT: lambda row, _tr: row.event.user_agent,
}


def cell_text(row: ActivityRow, column: int, tr: Language = ENGLISH) -> str:
    """What one cell shows (always plain text)."""
    cell = _CELLS.get(column)
    return cell(row, tr) if cell is not None else ""


class ActivityModel(RowTableModel[ActivityRow]):
    """Events newest first, loaded a page at a time, off the UI thread.

    Signals: ``pageLoaded(int rows)`` after rows arrived (or the head was
    refreshed); ``totalChanged(int)`` the number of matching events (-1 while
    unknown: a text search that has not read everything yet);
    ``loadingChanged(bool)``; ``loadFailed(str)`` with a message for the rep;
    ``newCountChanged(int)`` the events shown that are newer than ``seen_id``.

    ``now()`` is the clock "5 min ago" is measured from (a test's or a
    screenshot's fixed moment).
    """

    pageLoaded = Signal(int)
    totalChanged = Signal(int)
    loadingChanged = Signal(bool)
    loadFailed = Signal(str)
    newCountChanged = Signal(int)

    def __init__(
        self,
        query: ActivityQuery,
        *,
        page_size: int = PAGE_SIZE,
        feed: FeedFilter | None = None,
        worker: Worker | None = None,
        now: Callable[[], datetime] = utc_now,
        parent: QObject | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(tuple(tr.t(h) for h in HEADERS), parent)
        self._tr = tr
        self._now = now
        self._seen_id: int | None = None  # None: everything shown counts as seen
        self._new_count = 0
        self._new_font = QFont(QGuiApplication.font())
        self._new_font.setBold(True)
        self._query = query
        self._page_size = page_size
        self._feed = feed or FeedFilter()
        self._worker = worker or Worker(1, self)
        self._generation = _Generation()
        self._ids: set[int] = set()
        self._offset = 0
        self._exhausted = False
        self._loading = False
        self._head_pending = False
        self._head_again = False
        self._total = -1
        self._filtered_brush = greyed_brush()
        self._load(reset=True)

    # ------------------------------------------------------------ public

    @property
    def feed(self) -> FeedFilter:
        """The filter in force."""
        return self._feed

    @property
    def loading(self) -> bool:
        """True while a page is being read."""
        return self._loading

    @property
    def total(self) -> int:
        """Matching events (-1: not known yet)."""
        return self._total

    @property
    def worker(self) -> Worker:
        """The worker the queries run on."""
        return self._worker

    def set_filter(self, feed: FeedFilter) -> None:
        """Show what ``feed`` selects, from the newest event."""
        if feed == self._feed:
            return
        self._feed = feed
        self._load(reset=True)

    def refresh(self) -> None:
        """Re-read the newest events (new ones appear at the top)."""
        if self._head_pending:
            self._head_again = True  # coalesce bursts into one more read
            return
        self._head_pending = True
        generation = self._generation.value
        feed = self._feed
        page = functools.partial(
            read_page, self._query, feed, 0, self._page_size, with_total=not feed.needle()
        )
        self._worker.submit(
            page,
            functools.partial(self._head_read, generation),
            functools.partial(self._head_failed, generation),
        )

    def event_added(self, *_event: object) -> None:
        """A new or revised event was stored: refresh the head (for signal connections)."""
        self.refresh()

    @property
    def new_count(self) -> int:
        """Events shown that arrived after the rep last saw the feed."""
        return self._new_count

    def mark_seen(self) -> None:
        """The rep saw the feed: what is shown now is no longer new."""
        self._seen_id = max((row.event.id for row in self._rows), default=0)
        self._count_new(repaint=True)

    def times_changed(self) -> None:
        """The clock moved on: "5 min ago" becomes "6 min ago"."""
        if self._rows:
            last = len(self._rows) - 1
            self.dataChanged.emit(self.index(0, Column.WHEN), self.index(last, Column.WHEN),
                                  [Qt.ItemDataRole.DisplayRole])

    def close(self, timeout_ms: int = 5000) -> bool:
        """Stop reading: drop outstanding results and wait for running queries."""
        self._generation.value += 1
        return self._worker.close(timeout_ms)

    # ------------------------------------------------------------ Qt model

    def cell_data(self, row: ActivityRow, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            if column == Column.WHEN:
                return relative_when(row.event.at, self._now(), tr=self._tr)
            return cell_text(row, column, self._tr)
        if role == Qt.ItemDataRole.ToolTipRole and column == Column.WHEN:
            return full_when(row.event.at, tr=self._tr)  # our own text, never from outside
        if role == Qt.ItemDataRole.ForegroundRole and row.event.verdict != Verdict.HUMAN:
            return self._filtered_brush
        if role == Qt.ItemDataRole.FontRole and self._is_new(row):
            return self._new_font
        return None

    def _is_new(self, row: ActivityRow) -> bool:
        return self._seen_id is not None and row.event.id > self._seen_id

    def _count_new(self, repaint: bool = False) -> None:
        count = sum(1 for row in self._rows if self._is_new(row))
        if repaint and self._rows:  # the bold rows turn normal
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self._rows) - 1, len(HEADERS) - 1),
                                  [Qt.ItemDataRole.FontRole])
        if count != self._new_count:
            self._new_count = count
            self.newCountChanged.emit(count)

    def canFetchMore(self, parent: AnyIndex) -> bool:
        return not parent.isValid() and not self._exhausted and not self._loading

    def fetchMore(self, parent: AnyIndex) -> None:
        if self.canFetchMore(parent):
            self._load(reset=False)

    # ------------------------------------------------------------ loading

    def _load(self, reset: bool) -> None:
        if reset:
            self._generation.value += 1
            self._worker.cancel_all()
            self._head_pending = self._head_again = False
            self.beginResetModel()
            self._rows, self._ids = [], set()
            self._offset, self._exhausted = 0, False
            self.endResetModel()
            self._set_total(-1)
        generation = self._generation.value
        state = self._generation
        page = functools.partial(
            read_page,
            self._query,
            self._feed,
            self._offset,
            self._page_size,
            lambda: state.value == generation,
        )
        self._set_loading(True)
        self._worker.submit(
            page,
            functools.partial(self._page_read, generation),
            functools.partial(self._page_failed, generation),
        )
        if reset and not self._feed.needle():
            # A call of its own, after the page: counting may read every row.
            filters = self._feed.activity_filter()
            self._worker.submit(
                functools.partial(self._query.count_events, filters),
                functools.partial(self._counted, generation),
                functools.partial(self._count_failed, generation),
            )

    def _counted(self, generation: int, total: int) -> None:
        if generation == self._generation.value:
            self._set_total(total)

    def _count_failed(self, generation: int, error: BaseException) -> None:
        if generation == self._generation.value:
            log.error("counting the activity feed failed: %s", error)

    def _page_read(self, generation: int, page: Page) -> None:
        if generation != self._generation.value:
            return
        self._offset = page.next_offset
        self._exhausted = page.exhausted
        self._append([row for row in page.rows if row.event.id not in self._ids])
        if self._seen_id is None and not self._feed.needle():
            self._seen_id = max((row.event.id for row in self._rows), default=0)
        self._count_new()
        if page.total is not None:
            self._set_total(page.total)
        elif page.exhausted and self._feed.needle():
            self._set_total(len(self._rows))
        self._set_loading(False)
        self.pageLoaded.emit(len(self._rows))

    def _page_failed(self, generation: int, error: BaseException) -> None:
        if generation != self._generation.value:
            return
        log.error("reading the activity feed failed: %s", error)
        self._exhausted = True  # no retry loop; refresh() or a new filter tries again
        self._set_loading(False)
        self.loadFailed.emit(self._tr.t("The activity could not be read: {error}", error=error))

    def _append(self, rows: list[ActivityRow]) -> None:
        if not rows:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        self._rows.extend(rows)
        self._ids.update(row.event.id for row in rows)
        self.endInsertRows()

    def _head_read(self, generation: int, page: Page) -> None:
        self._head_pending = False
        if generation == self._generation.value:
            self._merge_head(page)
            if self._seen_id is None:
                self._seen_id = max((row.event.id for row in self._rows), default=0)
            self._count_new()
            if page.total is not None:
                self._set_total(page.total)
            self.pageLoaded.emit(len(self._rows))
        if self._head_again:
            self._head_again = False
            self.refresh()

    def _head_failed(self, generation: int, error: BaseException) -> None:
        self._head_pending = self._head_again = False
        if generation == self._generation.value:
            log.error("refreshing the activity feed failed: %s", error)
            self.loadFailed.emit(self._tr.t("The activity could not be read: {error}", error=error))

    def _merge_head(self, page: Page) -> None:
        fresh = page.rows
        if not self._rows:
            self._reset_to(page)
            return
        first_id = self._rows[0].event.id
        start = next((i for i, row in enumerate(fresh) if row.event.id == first_id), None)
        if start is None:
            self._reset_to(page)  # more new rows than a page, or the top row left the filter
            return
        overlap = fresh[start:]
        shown = self._rows[: len(overlap)]
        if [r.event.id for r in shown] != [r.event.id for r in overlap[: len(shown)]]:
            self._reset_to(page)  # rows in between left the filter
            return
        for i, (old, new) in enumerate(zip(shown, overlap, strict=False)):
            if old != new:  # e.g. a revised verdict that stays within the filter
                self._rows[i] = new
                self.dataChanged.emit(self.index(i, 0), self.index(i, len(HEADERS) - 1))
        if len(overlap) > len(shown):
            self._exhausted = False  # the store holds rows past the ones shown
        new_rows = [row for row in fresh[:start] if row.event.id not in self._ids]
        if new_rows:
            self.beginInsertRows(QModelIndex(), 0, len(new_rows) - 1)
            self._rows[0:0] = new_rows
            self._ids.update(row.event.id for row in new_rows)
            self._offset += len(new_rows)
            self.endInsertRows()

    def _reset_to(self, page: Page) -> None:
        # A page still being read continues from the old offsets: drop it.
        self._generation.value += 1
        self._worker.cancel_all()
        self._set_loading(False)
        self.beginResetModel()
        self._rows = list(page.rows)
        self._ids = {row.event.id for row in page.rows}
        self._offset = page.next_offset
        self._exhausted = page.exhausted
        self.endResetModel()

    def _set_loading(self, loading: bool) -> None:
        if loading != self._loading:
            self._loading = loading
            self.loadingChanged.emit(loading)

    def _set_total(self, total: int) -> None:
        if total != self._total:
            self._total = total
            self.totalChanged.emit(total)
