"""The contacts window: a row per contact with its engagement, search, sorting, plain
text, and double-click opening the contact's record."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.tray.views.contacts.model import (
    COMPLETION_ROLE,
    CONTACT_ROLE,
    HEADERS,
    Column,
    ContactsModel,
)
from mailbeacon.tray.views.contacts.record import RecordView
from mailbeacon.tray.views.contacts.window import NO_CONTACTS, NO_MATCH, ContactsWindow
from mailbeacon.tray.views.tables import SORT_ROLE
from tests.helpers.contacts import fill_records
from tests.helpers.records import event, sent_email

WAIT_MS = 10_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordsStore]:
    with RecordsStore(tmp_path / "records.db") as records:
        fill_records(records)
        yield records


def loaded(qtbot: QtBot, model: ContactsModel) -> None:
    qtbot.waitUntil(lambda: not model.loading and model.rowCount() > 0, timeout=WAIT_MS)


@pytest.fixture
def window(qtbot: QtBot, store: RecordsStore) -> ContactsWindow:
    win = ContactsWindow(store)
    qtbot.addWidget(win)
    win.show()
    loaded(qtbot, win.model)
    return win


def rows(window: ContactsWindow) -> list[list[str]]:
    proxy = window.proxy
    return [
        [proxy.index(r, c).data() for c in range(proxy.columnCount())]
        for r in range(proxy.rowCount())
    ]


def test_the_model_passes_qt_model_checks(
    qtbot: QtBot, store: RecordsStore, qtmodeltester: ModelTester
) -> None:
    model = ContactsModel(store)
    loaded(qtbot, model)
    qtmodeltester.check(model)
    model.close()


def test_a_row_per_contact_with_engagement_and_lawful_basis(window: ContactsWindow) -> None:
    assert window.model.rowCount() == 2
    by_email = {row[Column.EMAIL]: row for row in rows(window)}
    alice = by_email["alice@example.com"]
    assert alice[Column.NAME] == "Alicja Nowak"
    assert alice[Column.COMPANY] == "Client <i>Ltd</i>"  # plain text, never markup
    assert alice[Column.LAWFUL_BASIS] == "consent"
    assert alice[Column.LAST_OPEN] and alice[Column.LAST_OPEN] != "—"
    assert alice[Column.LAST_CLICK] != "—"
    bob = by_email["bob@example.com"]
    assert bob[Column.NAME] == "" and bob[Column.LAST_OPEN] == "—"
    assert bob[Column.LAWFUL_BASIS] == "—" and bob[Column.LAST_ENGAGEMENT] != "—"
    assert [window.proxy.headerData(c, Qt.Orientation.Horizontal) for c in range(7)] == list(
        HEADERS
    )
    assert window.status.text() == "2 contacts"


def test_most_recently_engaged_first_and_sortable(window: ContactsWindow) -> None:
    assert [row[Column.EMAIL] for row in rows(window)] == [
        "bob@example.com", "alice@example.com"
    ]
    window.table.sortByColumn(Column.NAME, Qt.SortOrder.AscendingOrder)
    assert [row[Column.EMAIL] for row in rows(window)] == [
        "alice@example.com", "bob@example.com"
    ]


def test_search_matches_name_address_or_company(qtbot: QtBot, window: ContactsWindow) -> None:
    qtbot.keyClicks(window.search, "client <i>")
    assert [row[Column.EMAIL] for row in rows(window)] == ["alice@example.com"]
    assert window.status.text() == "1 of 2 contacts"
    window.search.clear()
    qtbot.keyClicks(window.search, "BOB@")
    assert [row[Column.EMAIL] for row in rows(window)] == ["bob@example.com"]


def test_completion_offers_name_and_address(window: ContactsWindow) -> None:
    texts = {
        window.model.index(r, 0).data(CONTACT_ROLE).email: window.model.index(r, 0).data(
            COMPLETION_ROLE
        )
        for r in range(window.model.rowCount())
    }
    assert texts == {
        "alice@example.com": "Alicja Nowak <alice@example.com>",
        "bob@example.com": "bob@example.com",
    }


def test_double_click_opens_the_record_once(
    qtbot: QtBot, window: ContactsWindow, tmp_path: Path
) -> None:
    window.table.sortByColumn(Column.NAME, Qt.SortOrder.AscendingOrder)
    rect = window.table.visualRect(window.proxy.index(0, Column.EMAIL))
    viewport = window.table.viewport()
    with qtbot.waitSignal(window.recordOpened, timeout=WAIT_MS) as opened:
        qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened.args == ["alice@example.com"]
    view = window.record_views["alice@example.com"]
    qtbot.addWidget(view)
    assert isinstance(view, RecordView) and view.isVisible()
    assert window.open_record("ALICE@example.com") is view
    window.grab().save(str(tmp_path / "contacts_window.png"))
    view.shutdown()
    window.shutdown()


def test_a_saved_record_refreshes_the_table(
    qtbot: QtBot, window: ContactsWindow, store: RecordsStore
) -> None:
    view = window.open_record("bob@example.com")
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: view.contact is not None, timeout=WAIT_MS)
    view.name_edit.setText("Bob Builder")
    with qtbot.waitSignal(window.model.loaded, timeout=WAIT_MS):
        view.save_button.click()
    by_email = {row[Column.EMAIL]: row for row in rows(window)}
    assert by_email["bob@example.com"][Column.NAME] == "Bob Builder"
    view.shutdown()


def test_no_contacts_says_what_to_do_next(qtbot: QtBot, tmp_path: Path) -> None:
    with RecordsStore(tmp_path / "empty.db") as empty:
        win = ContactsWindow(empty)
        qtbot.addWidget(win)
        with qtbot.waitSignal(win.model.loaded, timeout=WAIT_MS):
            win.show()
        assert win.empty.isVisible() and not win.table.isVisible()
        assert win.empty.text() == NO_CONTACTS and "Compose" in NO_CONTACTS
        win.shutdown()


def test_a_search_without_match_says_how_to_see_everyone(
    qtbot: QtBot, window: ContactsWindow
) -> None:
    window.search.setText("nobody like this")
    assert window.empty.isVisible() and window.empty.text() == NO_MATCH
    window.search.clear()
    assert window.table.isVisible() and not window.empty.isVisible()


NOW = datetime(2030, 1, 2, 11, 30, tzinfo=UTC)


def test_times_read_like_the_feed_with_the_full_time_on_hover(
    qtbot: QtBot, store: RecordsStore, qtmodeltester: ModelTester
) -> None:
    win = ContactsWindow(store, now=lambda: NOW, tz=UTC)
    qtbot.addWidget(win)
    loaded(qtbot, win.model)
    by_email = {row[Column.EMAIL]: row for row in rows(win)}
    alice, bob = by_email["alice@example.com"], by_email["bob@example.com"]
    assert alice[Column.LAST_OPEN] == "yesterday 10:00"
    assert alice[Column.LAST_CLICK] == "yesterday 10:05"
    assert bob[Column.LAST_ENGAGEMENT] == "30 min ago" and bob[Column.LAST_OPEN] == "—"
    index = win.proxy.index([r[Column.EMAIL] for r in rows(win)].index("alice@example.com"),
                            Column.LAST_OPEN)
    assert index.data(Qt.ItemDataRole.ToolTipRole) == "Tue 1 Jan 2030, 10:00:00"
    assert index.data(SORT_ROLE).startswith("2030-01-01T10:00:00")  # the stored UTC time
    qtmodeltester.check(win.model)
    win.shutdown()


def test_time_columns_sort_by_the_time_not_the_text(
    qtbot: QtBot, store: RecordsStore
) -> None:
    win = ContactsWindow(store, now=lambda: NOW, tz=UTC)
    qtbot.addWidget(win)
    loaded(qtbot, win.model)
    # "30 min ago" (Bob) would sort before "yesterday 10:05" (Alicja) as text.
    win.table.sortByColumn(Column.LAST_ENGAGEMENT, Qt.SortOrder.AscendingOrder)
    assert [(r[Column.EMAIL], r[Column.LAST_ENGAGEMENT]) for r in rows(win)] == [
        ("alice@example.com", "yesterday 10:05"), ("bob@example.com", "30 min ago")
    ]
    win.table.sortByColumn(Column.LAST_ENGAGEMENT, Qt.SortOrder.DescendingOrder)
    assert [r[Column.EMAIL] for r in rows(win)] == ["bob@example.com", "alice@example.com"]
    with qtbot.waitSignal(win.model.dataChanged):
        win.model.times_changed()  # the minute clock: texts are asked for again
    win.shutdown()


# ---------------------------------------------------------------- unread (issue 20)


def is_bold(window: ContactsWindow, email: str) -> bool:
    model = window.model
    row = next(r for r in range(model.rowCount())
               if model.index(r, 0).data(CONTACT_ROLE).email == email)
    font = model.index(row, Column.NAME).data(Qt.ItemDataRole.FontRole)
    return font is not None and font.bold()


def test_a_contact_with_new_activity_is_bold_and_counted_until_its_record_is_seen(
    qtbot: QtBot, window: ContactsWindow, store: RecordsStore, qtmodeltester: ModelTester
) -> None:
    # What was there when the list was first read is not news.
    assert window.model.new_count == 0
    assert not is_bold(window, "alice@example.com")
    assert "new" not in window.status.text() and window.windowTitle() == "Contacts — MailBeacon"
    dora = store.record_sent(sent_email("dora@example.com", subject="Demo"))
    store.add_event(event("open", "2031-01-01T10:01:00Z", contact="dora@example.com",
                          email_id=dora))
    # As the agent does for a counted event (notifications.policy):
    store.update_contact_engagement("alice@example.com", "click", "2031-01-01T10:00:00Z")
    store.update_contact_engagement("dora@example.com", "open", "2031-01-01T10:01:00Z")
    with qtbot.waitSignal(window.model.newCountChanged, timeout=WAIT_MS):
        window.event_added()
    qtbot.waitUntil(lambda: window.model.new_count == 2, timeout=WAIT_MS)
    qtmodeltester.check(window.model)
    assert is_bold(window, "alice@example.com") and is_bold(window, "dora@example.com")
    assert not is_bold(window, "bob@example.com")
    assert window.status.text().endswith(" · 2 with new activity")
    assert window.windowTitle() == "Contacts (2 new) — MailBeacon"
    record = window.open_record("alice@example.com")  # the rep looks at Alice
    qtbot.addWidget(record)
    assert not is_bold(window, "alice@example.com") and is_bold(window, "dora@example.com")
    assert window.status.text().endswith(" · 1 with new activity")
    window.hide()  # having seen the list: nothing is new
    assert window.model.new_count == 0 and not is_bold(window, "dora@example.com")
    assert window.windowTitle() == "Contacts — MailBeacon"
