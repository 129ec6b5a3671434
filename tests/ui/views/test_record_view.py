"""A contact's record: editable properties saved to the store, read-only engagement,
a timeline of sends and events with device and verdict, and logged emails that open
in the viewer."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.tray.views.activity.when import full_when
from mailbeacon.tray.views.contacts.record import (
    DETAIL_COLUMNS,
    EMPTY_RECORD,
    RecordView,
    TimelineColumn,
    TimelineRow,
)
from mailbeacon.tray.views.tables import ROW_ROLE
from tests.helpers.activity import HTML_SUBJECT
from tests.helpers.contacts import fill_records
from tests.helpers.records import event

WAIT_MS = 10_000


@pytest.fixture
def ids(store: RecordsStore) -> dict[str, int]:
    return fill_records(store)


def open_view(qtbot: QtBot, store: RecordsStore, email: str) -> RecordView:
    view = RecordView(store, email)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.loaded, timeout=WAIT_MS):
        view.show()
    return view


def timeline(view: RecordView) -> list[TimelineRow]:
    model = view.timeline_model
    return [model.index(r, 0).data(ROW_ROLE) for r in range(model.rowCount())]


def test_properties_and_engagement_are_shown(
    qtbot: QtBot, store: RecordsStore, ids: dict[str, int]
) -> None:
    view = open_view(qtbot, store, "Alice@Example.com")
    assert view.title.text() == "Alicja Nowak"
    assert view.name_edit.text() == "Alicja Nowak"
    assert view.company_edit.text() == "Client <i>Ltd</i>"
    assert view.basis_box.currentText() == "consent"
    assert view.last_open.text() != "—" and view.last_click.text() != "—"
    assert view.last_reply.text() == "—"
    assert view.counts.text() == "1 open · 1 click · 0 replies"
    assert not view.save_button.isEnabled()  # nothing changed yet
    for label in (view.title, view.last_open, view.counts):
        assert label.textFormat().name == "PlainText"


def test_edits_are_saved_through_the_store(
    qtbot: QtBot, store: RecordsStore, ids: dict[str, int]
) -> None:
    view = open_view(qtbot, store, "alice@example.com")
    view.name_edit.setText("Alicja Nowak-Kowalska")
    view.company_edit.setText("Other Co")
    view.basis_box.setCurrentText("")
    assert view.save_button.isEnabled()
    with qtbot.waitSignal(view.saved, timeout=WAIT_MS) as saved:
        view.save_button.click()
    assert saved.args == ["alice@example.com"]
    contact = store.contact("alice@example.com")
    assert contact is not None
    assert (contact.name, contact.company, contact.lawful_basis) == (
        "Alicja Nowak-Kowalska", "Other Co", None
    )
    assert not view.save_button.isEnabled()
    assert view.status.text() == "Saved."


def test_timeline_lists_sends_and_human_events_with_device(
    qtbot: QtBot, store: RecordsStore, ids: dict[str, int], qtmodeltester: ModelTester
) -> None:
    view = open_view(qtbot, store, "alice@example.com")
    qtmodeltester.check(view.timeline_model)
    rows = timeline(view)
    assert [(r.what, r.subject) for r in rows] == [
        ("Clicked", HTML_SUBJECT),
        ("Opened", HTML_SUBJECT),
        ("Sent (To)", HTML_SUBJECT),
    ]
    click, opened, sent = rows
    assert click.details == "https://example.com/offer · Chrome on Windows"
    assert opened.details == "Chrome on Windows" and opened.verdict == "Human"
    assert sent.logged and "logged copy" in sent.details
    subject_cell = view.timeline_model.index(2, TimelineColumn.EMAIL).data()
    assert subject_cell == HTML_SUBJECT  # shown as the characters it is


def test_show_filtered_adds_what_no_human_did(
    qtbot: QtBot, store: RecordsStore, ids: dict[str, int]
) -> None:
    view = open_view(qtbot, store, "alice@example.com")
    with qtbot.waitSignal(view.loaded, timeout=WAIT_MS):
        view.show_filtered.setChecked(True)
    assert ("Bot", "known scanner: Barracuda") in [(r.verdict, r.reason) for r in timeline(view)]


def test_anonymous_events_are_not_on_anyones_record(
    qtbot: QtBot, store: RecordsStore, ids: dict[str, int]
) -> None:
    view = open_view(qtbot, store, "bob@example.com")
    assert [r.what for r in timeline(view)] == ["Replied", "Sent (To)"]


def test_double_clicking_a_logged_email_opens_the_viewer(
    qtbot: QtBot, store: RecordsStore, ids: dict[str, int], tmp_path: Path
) -> None:
    view = open_view(qtbot, store, "alice@example.com")
    view.resize(1000, 560)
    view.grab().save(str(tmp_path / "record_view.png"))
    index = view.timeline_model.index(2, TimelineColumn.EMAIL)
    with qtbot.waitSignal(view.emailOpened, timeout=WAIT_MS) as opened:
        view.timeline.doubleClicked.emit(index)
    assert opened.args == [ids["logged"]]
    (viewer,) = view.viewers
    qtbot.addWidget(viewer)
    assert viewer.windowTitle() == f"{HTML_SUBJECT} — MailBeacon"
    assert viewer.subject.text() == HTML_SUBJECT
    view.shutdown()


def test_an_email_sent_without_log_says_there_is_no_copy(
    qtbot: QtBot, store: RecordsStore, ids: dict[str, int]
) -> None:
    view = open_view(qtbot, store, "bob@example.com")
    view.open_email(ids["unlogged"])
    qtbot.waitUntil(lambda: "without Log" in view.status.text(), timeout=WAIT_MS)
    assert view.viewers == []


def test_an_unknown_address_shows_an_empty_record(qtbot: QtBot, store: RecordsStore) -> None:
    view = open_view(qtbot, store, "nobody@example.com")
    assert view.timeline_model.rowCount() == 0
    assert view.status.text() == EMPTY_RECORD and "Compose" in EMPTY_RECORD


def test_times_are_relative_and_details_are_behind_show_details(
    qtbot: QtBot, store: RecordsStore, ids: dict[str, int]
) -> None:
    """Issue 20: when, what and where first; verdict, reason, address and browser on request."""
    view = open_view(qtbot, store, "alice@example.com")
    table = view.timeline
    assert not view.show_details.isChecked()
    assert all(table.isColumnHidden(c) for c in DETAIL_COLUMNS)
    assert not table.isColumnHidden(TimelineColumn.DETAILS)
    view.show_details.setChecked(True)
    assert not any(table.isColumnHidden(c) for c in DETAIL_COLUMNS)
    first = timeline(view)[0]
    when = view.timeline_model.index(0, TimelineColumn.WHEN)
    assert when.data(Qt.ItemDataRole.ToolTipRole) == full_when(first.at)
    assert "-" not in when.data()  # "12 Jun 2029", never the stored ISO time
    assert view.last_open.toolTip() != ""


def test_a_recent_event_reads_minutes_ago(
    qtbot: QtBot, store: RecordsStore, ids: dict[str, int]
) -> None:
    first = store.contact_record("alice@example.com")
    assert first is not None
    newest = datetime.fromisoformat(first.timeline[0].at)
    view = RecordView(store, "alice@example.com", now=lambda: newest + timedelta(minutes=5))
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.loaded, timeout=WAIT_MS):
        view.show()
    assert view.timeline_model.index(0, TimelineColumn.WHEN).data() == "5 min ago"


def test_new_events_are_bold_and_counted_until_the_record_is_seen(
    qtbot: QtBot, store: RecordsStore, ids: dict[str, int], qtmodeltester: ModelTester
) -> None:
    """Issue 20, unread markers: what arrived since the rep last saw the record."""
    view = open_view(qtbot, store, "alice@example.com")
    model = view.timeline_model
    assert model.new_count == 0  # the first read is the baseline
    entries = model.rowCount()
    store.add_event(event("click", "2031-01-01T10:00:00Z", contact="alice@example.com",
                          email_id=ids["logged"], url="https://example.com/price"))
    with qtbot.waitSignal(view.loaded, timeout=WAIT_MS):
        view.reload()  # what ContactsWindow.event_added does for an open record
    qtmodeltester.check(model)
    assert model.rowCount() == entries + 1 and model.new_count == 1
    newest = model.index(0, TimelineColumn.WHAT)
    assert newest.data() == "Clicked" and newest.data(Qt.ItemDataRole.FontRole).bold()
    assert model.index(1, TimelineColumn.WHAT).data(Qt.ItemDataRole.FontRole) is None
    assert view.status.text().endswith(" · 1 new since you last looked")
    assert "(1 new)" in view.windowTitle()
    view.hide()  # closing the record is having seen it
    assert model.new_count == 0
    assert newest.data(Qt.ItemDataRole.FontRole) is None
    assert "new" not in view.status.text() and "(1 new)" not in view.windowTitle()
