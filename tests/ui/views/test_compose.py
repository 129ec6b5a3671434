"""The compose window sends through the real sending path (Sender -> Outbox -> Upstream
-> an SMTP sink): the email arrives tracked, its attachment byte-identical, Bcc only in
the envelope; failures are messages; the window says what will be tracked; formatting,
attachments by drag and drop, and address completion work."""

from __future__ import annotations

import asyncio
import email
import re
import threading
import warnings
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QTextCursor, QTextListFormat
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.sending.accept import Sender
from mailbeacon.agent.sending.outbox import Outbox
from mailbeacon.agent.sending.relay import IncomingMessage
from mailbeacon.agent.sending.upstream import Upstream
from mailbeacon.agent.settings.mail_urls import parse_upstream
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.urls import TrackingUrls
from mailbeacon.tray.views.compose.document import document_text
from mailbeacon.tray.views.compose.window import ComposeDefaults, ComposeWindow
from mailbeacon.tray.views.contacts.model import ContactsModel
from tests.helpers.activity import HTML_SUBJECT
from tests.helpers.contacts import PDF
from tests.helpers.smtp import SmtpSink

WAIT_MS = 15_000
SERVER = "http://127.0.0.1:9"
ENROLLMENT = Enrollment(SERVER, 7, "api-token", b"k" * 32)
DEFAULTS = ComposeDefaults("Rep Example <rep@example.net>", track=True, log=True, clicks=True)
NOW = datetime(2030, 1, 31, 17, 0, tzinfo=UTC)
BODY = (
    '<p>Hello <b>Alicja</b>, here is <a href="https://example.com/offer">our offer</a>.</p>'
    "<ul><li>first point</li><li>second point</li></ul>"
)

T = TypeVar("T")


class LoopThread:
    """An asyncio loop on its own thread: where the agent's outbox lives in the tray."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="agent-loop")
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.close()


@dataclass
class Agent:
    """The sending half of the agent, for real."""

    sink: SmtpSink
    store: RecordsStore
    loop: LoopThread
    sender: Sender
    calls: list[IncomingMessage]

    def send(self, message: IncomingMessage) -> str:
        """What the tray gives the compose window: callable from any thread."""
        self.calls.append(message)
        return self.loop.run(self.sender.accept(message))


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    loop = LoopThread()
    with SmtpSink() as sink, RecordsStore(tmp_path / "records.db") as store:
        upstream = Upstream(parse_upstream(f"smtp://127.0.0.1:{sink.port}"), lambda: None)
        outbox = Outbox(tmp_path / "outbox", upstream)
        loop.run(outbox.start())
        settings = Settings()
        sender = Sender(store, outbox, TrackingUrls(ENROLLMENT), lambda: settings)
        try:
            yield Agent(sink, store, loop, sender, [])
        finally:
            loop.run(outbox.stop())
            loop.close()


def make_window(qtbot: QtBot, send: Any, **kwargs: Any) -> ComposeWindow:
    kwargs.setdefault("defaults", DEFAULTS)
    kwargs.setdefault("confirm", lambda _parent, _question: True)
    window = ComposeWindow(send, clock=lambda: NOW, **kwargs)
    qtbot.addWidget(window)
    window.show()
    return window


def write(window: ComposeWindow, *, to: str = "Alicja Nowak <alice@example.com>",
          subject: str = HTML_SUBJECT, html: str = BODY) -> None:
    window.to_edit.setText(to)
    window.subject_edit.setText(subject)
    window.editor.setHtml(html)


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


def test_a_composed_email_arrives_tracked_with_its_attachment(
    qtbot: QtBot, agent: Agent, tmp_path: Path
) -> None:
    attachment = tmp_path / "Angebot 2030.pdf"
    attachment.write_bytes(PDF)
    window = make_window(qtbot, agent.send)
    write(window)
    window.bcc_edit.setText("boss@example.net")
    window.add_attachments([attachment])
    window.update_click_note()
    window.grab().save(str(tmp_path / "compose.png"))

    with qtbot.waitSignal(window.sent, timeout=WAIT_MS):
        window.send_button.click()
    assert not window.isVisible()  # success closes the window

    (got,) = agent.sink.wait_for(1, timeout=WAIT_MS / 1000)
    assert got.mail_from == "rep@example.net"
    assert sorted(got.rcpt_tos) == ["alice@example.com", "boss@example.net"]
    msg = parse(got.data)
    assert msg["Subject"] == HTML_SUBJECT
    assert msg["To"] == "Alicja Nowak <alice@example.com>"
    assert msg["Bcc"] is None and b"boss@example.net" not in got.data
    html_part = msg.get_body(("html",))
    text_part = msg.get_body(("plain",))
    assert html_part is not None and text_part is not None
    html = html_part.get_content()
    assert re.search(re.escape(SERVER) + r"/o/[A-Za-z0-9_-]+\.gif", html), "no pixel"
    assert re.search(re.escape(SERVER) + r"/c/[A-Za-z0-9_-]+", html), "link not tracked"
    assert "https://example.com/offer" not in html
    assert "- first point" in text_part.get_content()
    (sent_file,) = list(msg.iter_attachments())
    assert sent_file.get_filename() == "Angebot 2030.pdf"
    assert sent_file.get_content() == PDF

    # The same path as the relay: recorded, and logged with the attachment.
    (call,) = agent.calls
    assert (call.track_override, call.log_override) == (True, True)
    record = agent.store.contact_record("alice@example.com")
    assert record is not None
    (sent,) = record.timeline
    copy = agent.store.logged_copy(sent.email.id)  # type: ignore[union-attr]
    assert copy is not None and copy.attachments[0].filename == "Angebot 2030.pdf"
    assert agent.store.attachment_content(copy.attachments[0].sha256) == PDF


def test_every_send_gets_a_fresh_pixel(qtbot: QtBot, agent: Agent) -> None:
    pixels = []
    for _ in range(2):
        window = make_window(qtbot, agent.send)
        write(window, html="<p>Same words</p>")
        with qtbot.waitSignal(window.sent, timeout=WAIT_MS):
            window.send_button.click()
    for got in agent.sink.wait_for(2, timeout=WAIT_MS / 1000):
        html = parse(got.data).get_body(("html",))
        assert html is not None
        found = re.search(r"/o/[A-Za-z0-9_-]+\.gif", html.get_content())
        assert found is not None
        pixels.append(found.group(0))
    assert pixels[0] != pixels[1]


def test_track_off_sends_it_untracked(qtbot: QtBot, agent: Agent) -> None:
    window = make_window(qtbot, agent.send)
    write(window)
    window.track_box.setChecked(False)
    window.log_box.setChecked(False)
    with qtbot.waitSignal(window.sent, timeout=WAIT_MS):
        window.send_button.click()
    (got,) = agent.sink.wait_for(1, timeout=WAIT_MS / 1000)
    assert b"/o/" not in got.data
    assert (agent.calls[0].track_override, agent.calls[0].log_override) == (False, False)


def test_clicks_only_sends_tracked_links_and_no_pixel(qtbot: QtBot, agent: Agent) -> None:
    """Issue 21: Track — opens and clicks / clicks only / off, from the compose window."""
    window = make_window(qtbot, agent.send)
    write(window)
    assert window.clicks_only_box.isEnabled() and not window.clicks_only_box.isChecked()
    window.clicks_only_box.setChecked(True)
    window.update_click_note()
    assert "no open-tracking image" in window.click_label.text()
    with qtbot.waitSignal(window.sent, timeout=WAIT_MS):
        window.send_button.click()
    (got,) = agent.sink.wait_for(1, timeout=WAIT_MS / 1000)
    assert b"/o/" not in got.data  # no pixel
    assert b"/c/" in got.data  # the links are tracked
    assert agent.calls[0].opens_override is False
    window.track_box.setChecked(False)
    assert not window.clicks_only_box.isEnabled()  # off is off


@pytest.mark.expect_log("sending from the compose window failed")
def test_a_failed_send_says_why_and_keeps_the_email(qtbot: QtBot) -> None:
    def broken(_message: IncomingMessage) -> str:
        raise ConnectionRefusedError("the agent is not running")

    window = make_window(qtbot, broken)
    write(window)
    with qtbot.waitSignal(window.sendFailed, timeout=WAIT_MS) as failed:
        window.send_button.click()
    assert failed.args == ["Not sent: the agent is not running"]
    assert window.status.text() == "Not sent: the agent is not running"
    assert "Traceback" not in window.status.text()
    assert window.isVisible() and window.send_button.isEnabled()
    assert window.subject_edit.text() == HTML_SUBJECT


def test_an_async_send_function_works_too(qtbot: QtBot) -> None:
    got: list[IncomingMessage] = []

    async def send(message: IncomingMessage) -> str:
        await asyncio.sleep(0)
        got.append(message)
        return "queue-1"

    window = make_window(qtbot, send)
    write(window, to="alice@example.com, Bob <bob@example.com>")
    window.cc_edit.setText("carol@example.com")
    with qtbot.waitSignal(window.sent, timeout=WAIT_MS) as sent:
        window.send_button.click()
    assert sent.args == ["queue-1"]
    assert got[0].recipients == ("alice@example.com", "bob@example.com", "carol@example.com")


def test_nothing_is_sent_without_a_recipient(qtbot: QtBot) -> None:
    calls: list[IncomingMessage] = []
    window = make_window(qtbot, lambda m: calls.append(m) or "x")
    write(window, to="")
    window.send_button.click()
    assert window.status.text() == "Add at least one recipient."
    window.to_edit.setText("alice@")
    window.send_button.click()
    assert "not an email address" in window.status.text()
    assert calls == []


def test_the_window_says_when_clicks_cannot_be_tracked(qtbot: QtBot) -> None:
    window = make_window(qtbot, lambda m: "x")
    write(window, html="<p>No links here</p>")
    window.update_click_note()
    assert window.click_label.text() == (
        "Opens are tracked. There is no link whose clicks could be tracked."
    )
    window.editor.moveCursor(QTextCursor.MoveOperation.End)
    window.insert_link("https://example.com/pricing", "our pricing")
    assert window.click_label.text() == "Opens and clicks on 1 link are tracked."
    window.editor.setHtml('<p><a href="https://example.com">https://example.com</a></p>')
    window.update_click_note()
    assert "links that show their own web address are left as they are" in (
        window.click_label.text()
    )
    window.track_box.setChecked(False)
    assert window.click_label.text().startswith("Track is off")

    no_clicks = make_window(qtbot, lambda m: "x",
                            defaults=ComposeDefaults("rep@example.net", clicks=False))
    write(no_clicks)
    no_clicks.update_click_note()
    assert no_clicks.click_label.text() == (
        "Opens are tracked. Clicks are not: click tracking is off in Settings."
    )


def test_bold_italic_lists_and_links(qtbot: QtBot) -> None:
    window = make_window(qtbot, lambda m: "x")
    window.editor.setPlainText("important\nfirst\nsecond")
    cursor = window.editor.textCursor()
    cursor.movePosition(QTextCursor.MoveOperation.Start)
    cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
    window.editor.setTextCursor(cursor)
    window.bold_action.trigger()
    window.italic_action.trigger()
    cursor.movePosition(QTextCursor.MoveOperation.NextBlock)
    window.editor.setTextCursor(cursor)
    window.numbers_action.trigger()
    cursor.movePosition(QTextCursor.MoveOperation.NextBlock)
    window.editor.setTextCursor(cursor)
    window.toggle_list(QTextListFormat.Style.ListDecimal)
    html = window.draft().html
    assert "font-weight:700" in html and "font-style:italic" in html
    assert "<ol" in html
    assert document_text(window.editor.document()) == "important\n1. first\n2. second\n"
    window.toggle_list(QTextListFormat.Style.ListDecimal)  # off again for the last item
    assert document_text(window.editor.document()).endswith("\nsecond\n")


def test_pasted_html_keeps_basic_formatting(qtbot: QtBot) -> None:
    window = make_window(qtbot, lambda m: "x")
    mime = QMimeData()
    mime.setHtml('<p>From the web: <b>bold</b> and <a href="https://example.com/a">a link</a></p>')
    mime.setText("From the web: bold and a link")
    window.editor.insertFromMimeData(mime)
    html = window.draft().html
    assert "font-weight:700" in html and 'href="https://example.com/a"' in html
    assert document_text(window.editor.document()) == (
        "From the web: bold and a link (https://example.com/a)\n"
    )


def test_files_dropped_on_the_window_or_the_editor_are_attached(
    qtbot: QtBot, tmp_path: Path
) -> None:
    first, second = tmp_path / "a.pdf", tmp_path / "b.txt"
    first.write_bytes(PDF)
    second.write_text("notes")
    window = make_window(qtbot, lambda m: "x")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(first))])
    with warnings.catch_warnings():  # PySide marks the only constructor deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime,
                                Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)  # a drop goes where the drag entered
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    assert drop.isAccepted()
    other = QMimeData()
    other.setUrls([QUrl.fromLocalFile(str(second)), QUrl.fromLocalFile(str(tmp_path))])
    window.editor.insertFromMimeData(other)
    assert window.attachment_paths == [first, second]
    assert window.editor.toPlainText() == ""  # no file path pasted into the body
    assert "Not attached" in window.status.text()  # the folder
    window.attachment_list.setCurrentRow(0)
    window.remove_button.click()
    assert window.attachment_paths == [second]
    assert window.attachment_list.count() == 1


def test_addresses_complete_from_the_contacts(qtbot: QtBot, tmp_path: Path) -> None:
    with RecordsStore(tmp_path / "records.db") as store:
        store.upsert_contact("alice@example.com", name="Nowak, Alicja")
        store.upsert_contact("bob@example.com")
        model = ContactsModel(store)
        qtbot.waitUntil(lambda: model.rowCount() == 2, timeout=WAIT_MS)
        window = make_window(qtbot, lambda m: "x", contacts=model)
        window.to_edit.setFocus()
        qtbot.keyClicks(window.to_edit, "bob@example.com, ali")
        completer = window.to_edit.completer_
        assert completer is not None
        qtbot.waitUntil(lambda: completer.popup().isVisible(), timeout=WAIT_MS)
        assert completer.completionCount() == 1
        assert completer.currentCompletion() == '"Nowak, Alicja" <alice@example.com>'
        popup = completer.popup()
        assert popup.model().index(0, 0).data() == '"Nowak, Alicja" <alice@example.com>'
        window.grab().save(str(tmp_path / "compose_completion.png"))
        completer.activated.emit(completer.currentCompletion())
        assert window.to_edit.text() == 'bob@example.com, "Nowak, Alicja" <alice@example.com>, '
        assert window.to_edit.addresses() == [
            "bob@example.com", '"Nowak, Alicja" <alice@example.com>'
        ]
        model.close()


def test_closing_an_unsent_email_asks_first(qtbot: QtBot) -> None:
    answers = [False, True]
    asked: list[str] = []

    def confirm(_parent: object, question: str) -> bool:
        asked.append(question)
        return answers.pop(0)

    window = make_window(qtbot, lambda m: "x", confirm=confirm)
    write(window)
    window.close()
    assert window.isVisible()
    with qtbot.waitSignal(window.closed, timeout=WAIT_MS):
        window.close()
    assert asked == ["Discard this email?", "Discard this email?"]


def test_a_send_hands_over_the_relays_answer_and_whether_it_was_tracked(qtbot: QtBot) -> None:
    """The tray's confirmation (issue 20) gets the relay's answer and the Track choice."""
    from mailbeacon.tray.views.compose.window import SentEmail

    window = make_window(qtbot, lambda _message: "250 2.0.0 OK queued as q-7")
    write(window, subject="Our offer")
    window.track_box.setChecked(False)
    with qtbot.waitSignal(window.handedOver, timeout=WAIT_MS) as handed:
        window.send_button.click()
    assert handed.args == [SentEmail("250 2.0.0 OK queued as q-7", False, "Our offer")]

    tracked = make_window(qtbot, lambda _message: "250 2.0.0 OK queued as q-8")
    write(tracked, subject="Our offer")
    with qtbot.waitSignal(tracked.handedOver, timeout=WAIT_MS) as handed:
        tracked.send_button.click()
    assert handed.args == [SentEmail("250 2.0.0 OK queued as q-8", True, "Our offer")]


def test_autocomplete_survives_a_garbage_collection(qtbot: QtBot, tmp_path: Path) -> None:
    """Issue 20: the completer's contacts model was collected as soon as nobody in Python
    held it (as when the tray builds the window), so autocomplete offered nothing."""
    import gc

    with RecordsStore(tmp_path / "records.db") as store:
        store.upsert_contact("alice@example.com", name="Alicja Nowak")
        window = make_window(qtbot, lambda m: "x", contacts=ContactsModel(store))  # no ref kept
        gc.collect()
        completer = window.to_edit.completer_
        assert completer is not None
        source = completer.model().sourceModel()  # type: ignore[attr-defined]
        assert source is not None
        qtbot.waitUntil(lambda: source.rowCount() == 1, timeout=WAIT_MS)
        window.to_edit.setFocus()
        qtbot.keyClicks(window.to_edit, "ali")
        qtbot.waitUntil(lambda: completer.popup().isVisible(), timeout=WAIT_MS)
        assert completer.currentCompletion() == "Alicja Nowak <alice@example.com>"
        window.close()
