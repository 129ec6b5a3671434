"""The feed is live (issue 20): a new event grows the model when the agent's news
reaches the UI thread through the real bridge, without reopening or toggling a filter;
and what the feed says of an event is right ("possibly forwarded", no verdict on a
bounce)."""

from __future__ import annotations

import threading

from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.tray.threads.bridge import AgentBridge
from mailbeacon.tray.views.activity.model import ActivityModel, Column
from mailbeacon.tray.views.contacts.window import ContactsWindow
from tests.helpers.activity import small_feed
from tests.helpers.records import event
from tests.helpers.tray import sample_notification

WAIT_MS = 10_000


def test_feed_grows_when_the_new_event_signal_arrives(
    qtbot: QtBot, qtmodeltester: ModelTester, store: RecordsStore
) -> None:
    small_feed(store)
    model = ActivityModel(store)
    qtmodeltester.check(model)
    qtbot.waitUntil(lambda: model.rowCount() == 4 and not model.loading, timeout=WAIT_MS)
    bridge = AgentBridge()
    bridge.notificationReceived.connect(model.event_added)

    store.add_event(event("open", "2031-01-01T10:00:00Z", contact="carol@example.com"))
    # The agent calls its listener on its own thread; the bridge hands it to this one.
    with qtbot.waitSignal(model.pageLoaded, timeout=WAIT_MS):
        agent = threading.Thread(target=bridge.notification, args=(sample_notification(),))
        agent.start()
        agent.join()
    qtbot.waitUntil(lambda: model.rowCount() == 5, timeout=WAIT_MS)
    assert model.index(0, Column.WHO).data() == "carol@example.com"
    qtmodeltester.check(model)
    model.close()


def test_possibly_forwarded_is_shown_in_the_feed(qtbot: QtBot, store: RecordsStore) -> None:
    store.add_event(event("open", "2031-01-01T10:00:00Z", contact="a@example.com",
                          possibly_forwarded=True))
    store.add_event(event("open", "2031-01-01T10:01:00Z", contact="a@example.com",
                          possibly_forwarded=True, inferred=True))
    model = ActivityModel(store)
    qtbot.waitUntil(lambda: model.rowCount() == 2 and not model.loading, timeout=WAIT_MS)
    assert [model.index(r, Column.TYPE).data() for r in range(2)] == [
        "Open (inferred, possibly forwarded)", "Open (possibly forwarded)"
    ]
    model.close()


def test_contacts_and_an_open_record_refresh_on_a_new_event(
    qtbot: QtBot, store: RecordsStore
) -> None:
    small_feed(store)
    window = ContactsWindow(store)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: not window.model.loading, timeout=WAIT_MS)
    before = window.model.rowCount()
    view = window.open_record("alice@example.com")
    qtbot.addWidget(view)  # closed at the end: no record window outlives the test
    qtbot.waitUntil(lambda: view.timeline_model.rowCount() > 0, timeout=WAIT_MS)
    rows = view.timeline_model.rowCount()
    store.add_event(event("open", "2031-01-01T10:00:00Z", contact="alice@example.com"))
    store.add_event(event("open", "2031-01-01T10:00:00Z", contact="dora@example.com"))
    with qtbot.waitSignal(view.loaded, timeout=WAIT_MS):
        window.event_added(sample_notification())
    assert view.timeline_model.rowCount() == rows + 1
    qtbot.waitUntil(lambda: window.model.rowCount() == before + 1, timeout=WAIT_MS)
    window.shutdown(2000)
