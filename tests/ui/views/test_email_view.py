"""One sent email's own view: who opened, clicked or replied, the timeline with what no
person made behind "Details", the logged copy, and compose windows pre-filled to
reply, follow up or resend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import Qt
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from mailbeacon.agent.records.model import LoggedCopy
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.tray.views.compose.window import ComposeWindow
from mailbeacon.tray.views.email.actions import ComposeFill, reply_subject
from mailbeacon.tray.views.email.model import (
    NOT_DELIVERED,
    NOT_OPENED,
    RecipientColumn,
    TimelineColumn,
    full_when,
    relative_when,
)
from mailbeacon.tray.views.email.window import EmailWindow, EmailWindows, fill_compose
from mailbeacon.tray.views.email_viewer import EmailViewer
from tests.helpers.activity import HTML_SUBJECT
from tests.helpers.contacts import fill_records
from tests.helpers.records import event, sent_email

WAIT_MS = 10_000
NOW = datetime(2030, 1, 2, 12, 0, tzinfo=UTC)


class Composer:
    """Stands in for the tray's compose opener: remembers what it was asked to fill."""

    def __init__(self) -> None:
        self.fills: list[ComposeFill] = []

    def __call__(self, fill: ComposeFill) -> None:
        self.fills.append(fill)


def open_window(
    qtbot: QtBot, store: RecordsStore, email_id: int, composer: Composer | None = None,
    **kwargs: object,
) -> EmailWindow:
    window = EmailWindow(store, email_id, compose=composer or Composer(), clock=lambda: NOW,
                         **kwargs)  # type: ignore[arg-type]
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.loaded, timeout=WAIT_MS):
        window.show()
    return window


def cells(model: object, column: int) -> list[str]:
    rows = model.rowCount()  # type: ignore[attr-defined]
    return [model.index(r, column).data() for r in range(rows)]  # type: ignore[attr-defined]


def test_the_email_its_recipients_and_its_timeline_are_shown(
    qtbot: QtBot, qtmodeltester: ModelTester, store: RecordsStore
) -> None:
    ids = fill_records(store)
    window = open_window(qtbot, store, ids["logged"])
    qtmodeltester.check(window.recipients_model)
    qtmodeltester.check(window.timeline_model)
    qtmodeltester.check(window.details_model)
    assert window.subject.text() == HTML_SUBJECT  # as typed, never markup
    assert window.subject.textFormat() == Qt.TextFormat.PlainText
    assert window.sent.text().startswith("Sent ") and "Alicja Nowak" in window.sent.text()
    assert "Tue 1 Jan 2030" in window.sent.toolTip()
    assert window.tracking.text() == "Tracked · Logged (a copy is kept)"
    assert window.outcome.text() == "1 of 1 opened · 1 clicked"
    assert cells(window.recipients_model, RecipientColumn.WHO) == [
        "Alicja Nowak <alice@example.com>"
    ]
    [status] = cells(window.recipients_model, RecipientColumn.STATUS)
    assert status.startswith("Clicked ")
    [opens] = cells(window.recipients_model, RecipientColumn.OPENS)
    assert opens.startswith("1 · ")
    # The people's events first-class; the scanner's behind "Details", with its reason.
    assert cells(window.timeline_model, TimelineColumn.WHAT) == [
        "Alicja Nowak clicked example.com/offer", "Alicja Nowak opened it"
    ]
    assert "Chrome" in cells(window.timeline_model, TimelineColumn.DETAILS)[1]
    assert window.details.isHidden()
    assert window.details_button.text().startswith("Details: 1 event no person made")
    window.details_button.click()
    assert window.details.isVisible()
    assert cells(window.details_model, TimelineColumn.DETAILS) == [
        "Not a person: known scanner: Barracuda"
    ]
    assert window.details_model.index(0, 0).data(Qt.ItemDataRole.ForegroundRole) is not None
    assert window.timeline_model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole) == full_when(
        "2030-01-01T10:05:00Z"
    )
    assert not window.follow_up_button.isEnabled()  # everyone opened it
    assert window.resend_button.isHidden()


def test_someone_is_a_row_of_its_own_and_not_opened_is_said(
    qtbot: QtBot, store: RecordsStore
) -> None:
    ids = fill_records(store)
    store.record_sent(sent_email("carol@example.com"))  # another email: not counted here
    window = open_window(qtbot, store, ids["unlogged"])
    who = cells(window.recipients_model, RecipientColumn.WHO)
    assert who == ["bob@example.com", "Someone (cannot be told apart)"]
    statuses = cells(window.recipients_model, RecipientColumn.STATUS)
    assert statuses[0].startswith("Replied ")
    assert not window.copy_button.isEnabled()
    assert window.copy_button.toolTip() == "Sent without Log: no copy was kept"
    waiting = store.record_sent(sent_email("dan@example.com", "eve@example.com"))
    store.add_event(event("open", email_id=waiting, contact="eve@example.com"))
    window = open_window(qtbot, store, waiting)
    assert cells(window.recipients_model, RecipientColumn.STATUS)[0] == NOT_OPENED
    assert cells(window.recipients_model, RecipientColumn.OPENS)[0] == "—"
    assert window.outcome.text() == "1 of 2 opened"


def test_the_logged_copy_opens_in_the_email_viewer(qtbot: QtBot, store: RecordsStore) -> None:
    ids = fill_records(store)
    window = open_window(qtbot, store, ids["logged"])
    assert window.copy_button.isEnabled()
    with qtbot.waitSignal(window.copyOpened, timeout=WAIT_MS) as opened:
        window.copy_button.click()
    assert opened.args == [ids["logged"]]
    [viewer] = window.viewers
    qtbot.addWidget(viewer)
    assert isinstance(viewer, EmailViewer) and viewer.isVisible()
    window.shutdown(2000)


def test_reply_and_follow_up_fill_to_and_a_re_subject(qtbot: QtBot, store: RecordsStore) -> None:
    email_id = store.record_sent(sent_email(
        "ewa@client.example", "jan@client.example", subject="Demo", sent_at=NOW.isoformat()
    ))
    store.add_event(event("open", at=(NOW + timedelta(minutes=3)).isoformat(),
                          email_id=email_id, contact="ewa@client.example"))
    composer = Composer()
    window = open_window(qtbot, store, email_id, composer)
    assert window.follow_up_button.text() == "&Follow up with those who have not opened (1)"
    with qtbot.waitSignal(window.composeOpened, timeout=WAIT_MS):
        window.reply_button.click()
    window.follow_up_button.click()
    reply, follow_up = composer.fills
    assert (reply.to, reply.subject) == (("ewa@client.example", "jan@client.example"), "Re: Demo")
    assert (follow_up.to, follow_up.subject) == (("jan@client.example",), "Re: Demo")
    assert reply_subject("RE: Demo") == "RE: Demo"


def test_a_bounce_resends_with_the_original_subject_and_body(
    qtbot: QtBot, store: RecordsStore
) -> None:
    email_id = store.record_sent(sent_email(
        "ewa@client.example", "typo@client.exmaple", subject="Offer <b>Q4</b>", log=True
    ))
    store.log_copy(email_id, LoggedCopy(html="<p>Hello, here is <b>the offer</b>.</p>",
                                        text="Hello, here is the offer."))
    store.add_event(event("delivery_failed", server_id=None, local_key="df:1",
                          email_id=email_id, reason="550 5.1.1 no such user",
                          details={"recipients": ["typo@client.exmaple"]}))
    composer = Composer()
    window = open_window(qtbot, store, email_id, composer)
    assert window.resend_button.isVisible()
    assert cells(window.recipients_model, RecipientColumn.STATUS)[1] == NOT_DELIVERED
    assert cells(window.timeline_model, TimelineColumn.WHAT) == [
        "Could not be delivered to typo@client.exmaple"
    ]
    assert cells(window.timeline_model, TimelineColumn.DETAILS) == ["550 5.1.1 no such user"]
    window.resend_button.click()
    [fill] = composer.fills
    # Closing a filled compose window asks first; the test's teardown closes it.
    compose = fill_compose(
        ComposeWindow(lambda _message: "queued", confirm=lambda *_: True), fill
    )
    qtbot.addWidget(compose)
    assert compose.to_edit.text() == "typo@client.exmaple"
    assert compose.subject_edit.text() == "Offer <b>Q4</b>"
    assert compose.editor.toPlainText() == "Hello, here is the offer."
    assert compose.status.text() == "Correct the address, then send."


def test_an_email_not_in_the_records_says_so(qtbot: QtBot, store: RecordsStore) -> None:
    window = open_window(qtbot, store, 404)
    assert window.subject.text() == "This email is not in the records"
    assert not window.reply_button.isEnabled()


def test_one_window_per_email_read_again_on_each_open(qtbot: QtBot, store: RecordsStore) -> None:
    ids = fill_records(store)
    made: list[EmailWindow] = []

    def make(email_id: int) -> EmailWindow:
        window = EmailWindow(store, email_id, compose=Composer())
        qtbot.addWidget(window)
        made.append(window)
        return window

    windows = EmailWindows(make)
    first = windows.open(ids["logged"])
    qtbot.waitUntil(lambda: first.view is not None, timeout=WAIT_MS)
    with qtbot.waitSignal(first.loaded, timeout=WAIT_MS):
        assert windows.open(ids["logged"]) is first
    assert made == [first]
    windows.shutdown(2000)
    assert windows.windows == {}


@pytest.mark.parametrize(
    ("ago", "said"),
    [(timedelta(seconds=5), "just now"), (timedelta(seconds=-30), "just now"),
     (timedelta(minutes=5), "5 min ago"), (timedelta(minutes=59), "59 min ago")],
)
def test_times_are_relative(ago: timedelta, said: str) -> None:
    at = (NOW - ago).isoformat()
    assert relative_when(at, NOW) == said


def test_long_ago_is_a_date_and_the_tooltip_is_the_full_local_time() -> None:
    assert relative_when("2029-12-01T10:00:00Z", NOW).endswith("Dec 2029")
    # The app's one full-date format (core/language.py), in the local zone.
    assert full_when("2030-01-01T10:00:00Z").startswith(("Tue 1 Jan 2030",
                                                         "Wed 2 Jan 2030",
                                                         "Mon 31 Dec 2029"))
