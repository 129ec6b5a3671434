"""The activity window: filter widgets drive the model, double-click asks for the
contact's record, everything shows as plain text."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.tray.views.activity.model import DETAIL_COLUMNS, ActivityModel, Column
from mailbeacon.tray.views.activity.window import EMPTY_FEED, EMPTY_FILTER, ActivityWindow
from mailbeacon.tray.views.tables import ROW_ROLE
from tests.helpers.activity import HTML_SUBJECT, fill_events, small_feed
from tests.helpers.records import event

WAIT_MS = 10_000


@pytest.fixture
def feed(store: RecordsStore) -> dict[str, int]:
    return small_feed(store)


def settled(qtbot: QtBot, model: ActivityModel) -> None:
    if model.worker.busy:
        with qtbot.waitSignal(
            model.worker.busyChanged, timeout=WAIT_MS, check_params_cb=lambda busy: not busy
        ):
            pass


@pytest.fixture
def window(qtbot: QtBot, store: RecordsStore, feed: dict[str, int]) -> ActivityWindow:
    win = ActivityWindow(store)
    qtbot.addWidget(win)
    win.show()
    settled(qtbot, win.model)
    return win


def row_of(window: ActivityWindow, event_id: int) -> int:
    model = window.model
    for r in range(model.rowCount()):
        if model.index(r, 0).data(ROW_ROLE).event.id == event_id:
            return r
    raise AssertionError(f"event {event_id} not shown")


def double_click(qtbot: QtBot, window: ActivityWindow, row: int) -> None:
    rect = window.table.visualRect(window.model.index(row, Column.WHO))
    viewport = window.table.viewport()
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=rect.center())


def test_double_click_asks_for_the_contacts_record(
    qtbot: QtBot, window: ActivityWindow, store: RecordsStore, feed: dict[str, int]
) -> None:
    row = row_of(window, feed["bob_click"])
    expected = store.event(feed["bob_click"])
    assert expected is not None and expected.email_id is not None
    with qtbot.waitSignal(window.openRecord, timeout=WAIT_MS) as opened:
        double_click(qtbot, window, row)
    assert opened.args == [expected.email_id, "bob@example.com"]


def test_an_anonymous_row_opens_the_email_without_a_contact(
    qtbot: QtBot, window: ActivityWindow, store: RecordsStore, feed: dict[str, int]
) -> None:
    row = row_of(window, feed["anonymous"])
    with qtbot.waitSignal(window.openRecord, timeout=WAIT_MS) as opened:
        double_click(qtbot, window, row)
    stored = store.event(feed["anonymous"])
    assert stored is not None
    assert opened.args == [stored.email_id, ""]


def test_filter_widgets_drive_the_model(
    qtbot: QtBot, window: ActivityWindow, feed: dict[str, int]
) -> None:
    model = window.model
    assert model.rowCount() == 4 and window.status.text() == "4 events"
    assert not window.verdict_box.isEnabled()

    window.show_filtered.setChecked(True)
    settled(qtbot, model)
    assert window.verdict_box.isEnabled() and model.rowCount() == 7
    window.verdict_box.setCurrentText("Not human")
    settled(qtbot, model)
    assert {model.index(r, Column.VERDICT).data() for r in range(model.rowCount())} == {
        "Bot", "Proxy", "Self"
    }
    window.type_box.setCurrentText("Clicks")
    settled(qtbot, model)
    assert model.rowCount() == 1 and window.status.text() == "1 event"
    assert model.index(0, Column.REASON).data() == "known scanner: Barracuda"

    window.show_filtered.setChecked(False)
    window.type_box.setCurrentText("All types")
    qtbot.keyClicks(window.search, "quarterly")
    qtbot.keyClick(window.search, Qt.Key.Key_Return)  # no need to wait for the pause
    settled(qtbot, model)
    assert model.feed.text == "quarterly" and model.rowCount() == 2
    assert window.status.text() == "2 matches"


def test_the_search_runs_after_a_pause_in_typing(
    qtbot: QtBot, window: ActivityWindow
) -> None:
    with qtbot.waitSignal(window.model.pageLoaded, timeout=WAIT_MS):
        window.search.setText("builder")
    settled(qtbot, window.model)
    assert window.model.rowCount() == 1


def test_details_show_the_selected_event_as_plain_text(
    qtbot: QtBot, window: ActivityWindow, feed: dict[str, int]
) -> None:
    window.show_details.setChecked(True)
    row = row_of(window, feed["alice_open"])
    window.table.selectRow(row)
    text = window.details.toPlainText()
    assert f"Email: {HTML_SUBJECT}" in text
    assert "203.0.113.7" in text and "Chrome" in text
    for label in window.findChildren(QLabel):
        assert label.textFormat() == Qt.TextFormat.PlainText


def test_new_events_appear_on_top(
    qtbot: QtBot, window: ActivityWindow, store: RecordsStore
) -> None:
    new_id = store.add_event(event("click", "2030-02-01T00:00:00Z", url="https://new.example"))
    with qtbot.waitSignal(window.model.rowsInserted, timeout=WAIT_MS):
        window.event_added("the notification")
    settled(qtbot, window.model)
    assert window.model.index(0, 0).data(ROW_ROLE).event.id == new_id
    # Not seen yet: counted, also in the title a rep sees in the task bar.
    assert window.status.text() == "1 new · 5 events"
    assert window.windowTitle() == "Activity (1 new) — MailBeacon"
    window.hide()  # closing the window is having seen it
    assert window.status.text() == "5 events"
    assert window.windowTitle() == "Activity — MailBeacon"


def test_scrolling_to_the_end_loads_more(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    fill_events(path, 1000)
    with RecordsStore(path) as store:
        win = ActivityWindow(store)
        qtbot.addWidget(win)
        win.show()
        settled(qtbot, win.model)
        assert win.model.rowCount() == 200
        with qtbot.waitSignal(win.model.pageLoaded, timeout=WAIT_MS):
            win.table.scrollToBottom()
        settled(qtbot, win.model)
        assert win.model.rowCount() >= 400
        win.shutdown()


def test_render_to_png(
    qtbot: QtBot, window: ActivityWindow, tmp_path: Path, feed: dict[str, int]
) -> None:
    window.show_filtered.setChecked(True)
    window.show_details.setChecked(True)
    settled(qtbot, window.model)
    window.table.selectRow(row_of(window, feed["alice_open"]))
    path = tmp_path / "activity.png"
    assert window.grab().save(str(path))
    assert path.stat().st_size > 5000


def test_verdicts_addresses_and_browsers_are_behind_show_details(
    qtbot: QtBot, window: ActivityWindow
) -> None:
    """Issue 20: who, what, when and where first; what the agent decided on request."""
    table = window.table
    assert not window.show_details.isChecked()
    assert all(table.isColumnHidden(c) for c in DETAIL_COLUMNS)
    assert not any(table.isColumnHidden(c) for c in
                   (Column.WHEN, Column.TYPE, Column.WHO, Column.EMAIL, Column.DETAIL))
    assert not window.details.isVisible()
    window.show_details.setChecked(True)
    assert not any(table.isColumnHidden(c) for c in DETAIL_COLUMNS)
    assert window.details.isVisible()
    window.show_details.setChecked(False)
    assert all(table.isColumnHidden(c) for c in DETAIL_COLUMNS)


def test_an_empty_feed_says_what_to_do_next(qtbot: QtBot, store: RecordsStore) -> None:
    win = ActivityWindow(store)
    qtbot.addWidget(win)
    win.show()
    settled(qtbot, win.model)
    qtbot.waitUntil(win.empty.isVisible, timeout=WAIT_MS)
    assert win.empty.text() == EMPTY_FEED and "Compose" in EMPTY_FEED
    assert not win.table.isVisible()
    store.add_event(event("open", "2030-02-01T00:00:00Z", contact="carol@example.com"))
    win.refresh()
    qtbot.waitUntil(win.table.isVisible, timeout=WAIT_MS)
    win.search.setText("no such words")
    win.apply_filters()
    qtbot.waitUntil(win.empty.isVisible, timeout=WAIT_MS)
    assert win.empty.text() == EMPTY_FILTER
