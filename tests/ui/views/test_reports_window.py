"""The reports window shows what agent.reports computes, per email, per contact and per
day (a QPainter chart), with "Someone" apart; subjects stay plain text; CSV export writes
the table of the current tab in the order shown."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from mailbeacon.agent.records.model import Recipient
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.tray.views.reports.chart import BarChart, Series, nice_ceiling
from mailbeacon.tray.views.reports.window import (
    NOTHING_IN_PERIOD,
    NOTHING_YET,
    PERIODS,
    ReportsWindow,
)
from tests.helpers.activity import HTML_SUBJECT
from tests.helpers.records import event, sent_email

WAIT_MS = 10_000
NOW = datetime(2030, 1, 3, 15, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordsStore]:
    with RecordsStore(tmp_path / "records.db") as records:
        records.upsert_contact("alice@example.com", name="Alicja <i>Nowak</i>")
        old = records.record_sent(sent_email("alice@example.com", subject="Old news",
                                             sent_at="2029-10-01T09:00:00Z"))
        first = records.record_sent(sent_email("alice@example.com", subject=HTML_SUBJECT,
                                               sent_at="2030-01-01T09:00:00Z"))
        shared = records.record_sent(sent_email(
            subject="Team offer", shared=True, sent_at="2030-01-02T08:00:00Z",
            recipients=(Recipient("alice@example.com", "to"), Recipient("bob@example.com", "cc")),
        ))
        alice = {"email_id": first, "contact": "alice@example.com"}
        records.add_event(event("open", "2030-01-01T09:30:00Z", **alice))
        records.add_event(event("open", "2030-01-02T10:00:00Z", **alice))
        records.add_event(event("click", "2030-01-02T10:01:00Z", url="https://e.example/", **alice))
        records.add_event(event("open", "2030-01-01T09:00:01Z", verdict="bot", **alice))
        records.add_event(event("open", "2030-01-02T12:00:00Z", email_id=shared, anonymous=True))
        records.add_event(event("open", "2029-10-01T10:00:00Z", email_id=old,
                                contact="alice@example.com"))
        yield records


def open_window(qtbot: QtBot, store: RecordsStore, **kwargs: object) -> ReportsWindow:
    window = ReportsWindow(store, tz=UTC, now=lambda: NOW, **kwargs)  # type: ignore[arg-type]
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.loaded, timeout=WAIT_MS):
        window.show()
    return window


def texts(window: ReportsWindow, tab: str) -> list[list[str]]:
    return getattr(window, f"{tab}_tab").shown_rows()[1]


def test_per_email_per_contact_and_totals(
    qtbot: QtBot, store: RecordsStore, qtmodeltester: ModelTester
) -> None:
    window = open_window(qtbot, store)
    qtmodeltester.check(window.emails_tab.model)
    qtmodeltester.check(window.contacts_tab.model)
    qtmodeltester.check(window.days_tab.model)
    assert window.totals.text() == (
        "2 emails to 3 recipients · 3 opens (1 by Someone) · 1 click · 0 replies · "
        "1 not counted (scanners, proxies, your own)"
    )
    assert window.totals.textFormat() == Qt.TextFormat.PlainText
    assert texts(window, "emails") == [
        ["2030-01-02 08:00", "Team offer", "2", "1 (1 by Someone)", "0 of 2", "0", "0",
         "4 h 00 min"],
        ["2030-01-01 09:00", HTML_SUBJECT, "1", "2", "1 of 1", "1", "0", "30 min"],
    ]
    contacts = texts(window, "contacts")
    assert contacts[0][:7] == ["Alicja <i>Nowak</i>", "alice@example.com", "", "2", "2", "1", "0"]
    assert contacts[1][:7] == ["bob@example.com", "bob@example.com", "", "1", "0", "0", "0"]


def test_the_chart_shows_human_opens_and_clicks_per_day_with_someone_apart(
    qtbot: QtBot, store: RecordsStore
) -> None:
    window = open_window(qtbot, store)
    chart = window.chart
    assert len(chart.labels) == 30 and chart.labels[-3:] == ("1 Jan", "2 Jan", "3 Jan")
    by_name = {s.name: s.values[-3:] for s in chart.series}
    assert by_name == {
        "Opens": (1, 1, 0),
        "Opens by Someone": (0, 1, 0),
        "Clicks": (0, 1, 0),
        "Clicks by Someone": (0, 0, 0),
    }
    assert texts(window, "days")[-2] == ["2030-01-02", "1", "1", "1", "0"]


def test_another_period_recomputes(qtbot: QtBot, store: RecordsStore) -> None:
    window = open_window(qtbot, store)
    with qtbot.waitSignal(window.loaded, timeout=WAIT_MS):
        window.period_box.setCurrentIndex([p[0] for p in PERIODS].index("All time"))
    assert [row[1] for row in texts(window, "emails")] == ["Team offer", HTML_SUBJECT, "Old news"]
    assert window.totals.text().startswith("3 emails to 4 recipients · 4 opens")


def test_csv_export_writes_the_current_table_as_shown(
    qtbot: QtBot, store: RecordsStore, tmp_path: Path
) -> None:
    target = tmp_path / "export"
    suggested: list[str] = []

    def choose(_parent: QWidget, name: str) -> str:
        suggested.append(name)
        return str(target)

    window = open_window(qtbot, store, choose_csv_path=choose)
    window.emails_tab.view.sortByColumn(3, Qt.SortOrder.DescendingOrder)  # most opens first
    with qtbot.waitSignal(window.exported, timeout=WAIT_MS) as exported:
        window.export_button.click()
    assert suggested == ["mailbeacon-emails-2030-01-03.csv"]
    assert exported.args == [str(target.with_suffix(".csv"))]
    raw = target.with_suffix(".csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows == [
        ["Sent", "Subject", "Recipients", "Opens", "Opened by", "Clicks", "Replies",
         "First open after"],
        ["2030-01-01 09:00", HTML_SUBJECT, "1", "2", "1 of 1", "1", "0", "30 min"],
        ["2030-01-02 08:00", "Team offer", "2", "1 (1 by Someone)", "0 of 2", "0", "0",
         "4 h 00 min"],
    ]

    window.tabs.setCurrentIndex(1)
    target = tmp_path / "contacts.csv"
    with qtbot.waitSignal(window.exported, timeout=WAIT_MS):
        window.export_button.click()
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    assert rows[0][0] == "Contact" and [r[1] for r in rows[1:]] == [
        "alice@example.com", "bob@example.com"
    ]


def test_each_tab_renders(qtbot: QtBot, store: RecordsStore, tmp_path: Path) -> None:
    window = open_window(qtbot, store)
    window.resize(1000, 600)
    for index, name in enumerate(("emails", "contacts", "days")):
        window.tabs.setCurrentIndex(index)
        window.grab().save(str(tmp_path / f"reports_{name}.png"))
    assert (tmp_path / "reports_days.png").stat().st_size > 0


def test_new_events_refresh_the_report(qtbot: QtBot, store: RecordsStore) -> None:
    window = open_window(qtbot, store)
    assert window.report is not None
    newest = window.report.emails[0].email_id
    store.add_event(event("click", "2030-01-03T11:00:00Z", email_id=newest, anonymous=True))
    with qtbot.waitSignal(window.loaded, timeout=WAIT_MS):
        window.event_added()
        window.event_added()  # a burst refreshes once
    assert "2 clicks (1 by Someone)" in window.totals.text()


# ---------------------------------------------------------------- the chart itself


def test_chart_axis_steps_are_round() -> None:
    assert [nice_ceiling(v) for v in (0, 1, 3, 4, 5, 9, 41, 1234)] == [
        4, 4, 4, 4, 8, 20, 80, 2000
    ]


def test_chart_checks_its_data_and_explains_a_bar(qtbot: QtBot) -> None:
    chart = BarChart()
    qtbot.addWidget(chart)
    with pytest.raises(ValueError, match="has 1 values for 2 labels"):
        chart.set_data(["a", "b"], [Series("Opens", (1,), QColor("blue"))])
    chart.set_data(["Jan 01", "Jan 02"], [
        Series("Opens", (3, 0), QColor("blue")),
        Series("Clicks", (1, 2), QColor("orange"), stack=1),
    ])
    chart.resize(400, 200)
    chart.grab()  # paints, recording where the bars are
    assert chart.maximum() == 3
    assert chart.tooltip_at(QPoint(100, 100)) == "Jan 01\nOpens: 3\nClicks: 1"
    assert chart.tooltip_at(QPoint(390, 100)) == "Jan 02\nOpens: 0\nClicks: 2"
    assert chart.tooltip_at(QPoint(2, 2)) == ""


def test_no_records_at_all_say_what_to_do_next(qtbot: QtBot, tmp_path: Path) -> None:
    with RecordsStore(tmp_path / "empty.db") as empty:
        window = open_window(qtbot, empty)
        assert window.empty.isVisible() and not window.tabs.isVisible()
        assert window.empty.text() == NOTHING_IN_PERIOD
        with qtbot.waitSignal(window.loaded, timeout=WAIT_MS):
            window.period_box.setCurrentIndex(len(PERIODS) - 1)  # all time
        assert window.empty.text() == NOTHING_YET and "Compose" in NOTHING_YET
        window.shutdown()


def test_times_read_like_the_feed_sort_by_the_time_and_export_in_full(
    qtbot: QtBot, store: RecordsStore, qtmodeltester: ModelTester
) -> None:
    at_one = datetime(2030, 1, 2, 13, 0, tzinfo=UTC)
    window = ReportsWindow(store, tz=UTC, now=lambda: at_one)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.loaded, timeout=10_000):
        window.show()
    tab = window.emails_tab
    sent = [tab.proxy.index(r, 0) for r in range(tab.proxy.rowCount())]
    assert [i.data() for i in sent] == ["today 08:00", "yesterday 09:00"]
    assert [i.data(Qt.ItemDataRole.ToolTipRole) for i in sent] == [
        "Wed 2 Jan 2030, 08:00:00", "Tue 1 Jan 2030, 09:00:00"
    ]
    assert tab.proxy.index(0, 1).data(Qt.ItemDataRole.ToolTipRole) is None  # not a time
    # As text "today" sorts before "yesterday"; by time the older email comes first.
    tab.view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    assert [tab.proxy.index(r, 0).data() for r in range(2)] == ["yesterday 09:00",
                                                                "today 08:00"]
    assert [row[0] for row in texts(window, "emails")] == ["2030-01-01 09:00",
                                                           "2030-01-02 08:00"]  # CSV: in full
    contacts = window.contacts_tab
    last = contacts.model.headers.index("Last engagement")
    alice = contacts.proxy.index(0, last)
    assert alice.data() == "today 10:01"
    assert alice.data(Qt.ItemDataRole.ToolTipRole) == "Wed 2 Jan 2030, 10:01:00"
    for model in (tab.model, contacts.model, window.days_tab.model):
        qtmodeltester.check(model)
    with qtbot.waitSignal(tab.model.dataChanged):
        tab.model.times_changed()
    window.shutdown()
