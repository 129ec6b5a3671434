"""Follow-up in the tray (issue 17): compose's "Send later…" and reminder box, the Scheduled
window over a real follow-up store, and a reminder's actions (Open record, Write
follow-up as a threaded reply, Snooze)."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pytestqt.qtbot import QtBot

from mailbeacon.agent.followup.store import FollowupStore
from mailbeacon.agent.notifications.model import Notification
from mailbeacon.agent.records.model import LoggedCopy
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.sending.compose_message import build_message
from mailbeacon.agent.sending.relay import IncomingMessage
from mailbeacon.agent.sending.submit import with_controls
from mailbeacon.core.followup_time import Delay, next_monday_nine, tomorrow_morning
from mailbeacon.tray.views.compose.window import ComposeDefaults, ComposeWindow
from mailbeacon.tray.views.reminder import FollowUpFill, ReminderWindow
from mailbeacon.tray.views.scheduled.window import GONE, ScheduledWindow
from tests.helpers.records import sent_email

WAIT_MS = 15_000
WARSAW = ZoneInfo("Europe/Warsaw")
NOW = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)  # Monday 17:00 in Warsaw
DEFAULTS = ComposeDefaults("Anna Kowalska <anna@rep.example>", remind_days=3)


def compose(qtbot: QtBot, sent: list[IncomingMessage], **kwargs: Any) -> ComposeWindow:
    def send(message: IncomingMessage) -> str:
        sent.append(message)
        return "250 2.0.0 OK queued as scheduled-1"

    window = ComposeWindow(
        send, defaults=DEFAULTS, clock=lambda: NOW, zone=lambda: WARSAW,
        confirm=lambda _p, _q: True, **kwargs,
    )  # fmt: skip
    qtbot.addWidget(window)
    window.show()
    window.to_edit.setText("Alicja Nowak <alicja@client.example>")
    window.subject_edit.setText("Oferta")
    window.editor.setHtml("<p>Dzień dobry</p>")
    return window


def test_send_later_tomorrow_morning_goes_to_the_relay_as_headers(qtbot: QtBot) -> None:
    sent: list[IncomingMessage] = []
    window = compose(qtbot, sent)
    assert window.remind.box.isChecked() and window.remind.days.value() == 3
    assert "Tue 8 Dec 08:00" in window.later_button.tomorrow_action.text()
    assert "Mon 14 Dec 09:00" in window.later_button.monday_action.text()
    with qtbot.waitSignal(window.handedOver, timeout=WAIT_MS) as handed:
        window.later_button.tomorrow_action.trigger()
    [message] = sent
    assert message.send_at == tomorrow_morning(NOW, WARSAW)
    assert message.remind == Delay(3, "d")
    raw = with_controls(message)
    assert b"X-MailBeacon-Send-At: 2026-12-08T07:00:00+00:00\r\n" in raw
    assert b"X-MailBeacon-Remind: 3d\r\n" in raw
    assert handed.args[0].send_at == tomorrow_morning(NOW, WARSAW)


def test_monday_and_a_picked_time_and_an_unticked_reminder(qtbot: QtBot) -> None:
    sent: list[IncomingMessage] = []
    picked = datetime(2026, 12, 9, 13, 30, tzinfo=UTC)
    window = compose(qtbot, sent, ask_time=lambda _parent, _proposed: picked)
    window.remind.box.setChecked(False)
    with qtbot.waitSignal(window.handedOver, timeout=WAIT_MS):
        window.later_button.monday_action.trigger()
    assert sent[0].send_at == next_monday_nine(NOW, WARSAW)
    assert b"X-MailBeacon-Remind: no" in with_controls(sent[0])
    second = compose(qtbot, sent, ask_time=lambda _parent, _proposed: picked)
    with qtbot.waitSignal(second.handedOver, timeout=WAIT_MS):
        second.later_button.pick_action.trigger()
    assert sent[1].send_at == picked


def _schedule(store: FollowupStore, to: str, at: float, subject: str = "Oferta") -> int:
    return store.schedule(
        mail_from="anna@rep.example", recipients=(to,),
        data=f"From: anna@rep.example\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nHi\r\n".encode(),
        track=None, log=None, opens=None, remind="3d", subject=subject, to_text=to,
        message_id=f"<{to}@rep.example>", created_at=NOW.timestamp(), send_at=at,
    )  # fmt: skip


def _select(window: ScheduledWindow, item_id: int) -> None:
    for row in range(window.model.rowCount()):
        item = window.model.row_at(window.model.index(row, 0))
        if item is not None and item.id == item_id:
            window.select_row(row)
            return
    raise AssertionError(f"no row for {item_id}")


def test_the_scheduled_window_sends_now_changes_the_time_edits_and_cancels(
    qtbot: QtBot, qtmodeltester: Any, tmp_path: Path
) -> None:
    store = FollowupStore(tmp_path / "followup.db")
    at = NOW.timestamp() + 86400
    ids = [_schedule(store, f"p{n}@client.example", at + n) for n in range(4)]
    edited: list[tuple[str, bytes]] = []
    new_time = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
    window = ScheduledWindow(
        store, clock=NOW.timestamp, zone=lambda: WARSAW,
        ask_time=lambda _p, _proposed: new_time, confirm=lambda _p, _q: True,
        edit=lambda item, data: edited.append((item.subject, data)),
    )  # fmt: skip
    qtbot.addWidget(window)
    window.show()
    qtmodeltester.check(window.model)
    assert window.model.rowCount() == 4 and not window.empty_label.isVisible()
    assert window.model.index(0, 0).data() == "Tue 8 Dec 2026, 17:00"
    assert window.model.index(0, 3).data() == "in 3 days"
    window.select_row(0)
    window.send_now()
    assert store.scheduled_item(ids[0]).send_at == NOW.timestamp()  # type: ignore[union-attr]
    window.select_row(1)
    window.change_time()
    assert store.scheduled_item(ids[1]).send_at == new_time.timestamp()  # type: ignore[union-attr]
    _select(window, ids[3])
    window.cancel()
    assert store.scheduled_item(ids[3]).state == "cancelled"  # type: ignore[union-attr]
    assert store.scheduled_item(ids[1]).state == "waiting"  # type: ignore[union-attr]
    _select(window, ids[2])
    window.edit()
    assert edited and edited[0][1].startswith(b"From: anna@rep.example")
    assert store.scheduled_item(ids[2]).state == "cancelled"  # type: ignore[union-attr]
    qtmodeltester.check(window.model)
    # A click that races the agent says so and does nothing.
    window.select_row(0)
    chosen = window.selected()
    assert chosen is not None
    store.claim_scheduled(chosen.id, NOW.timestamp())
    window.send_now()
    assert window.status.text() == GONE
    store.close()


def test_a_reminder_opens_the_record_writes_a_threaded_follow_up_and_snoozes(
    qtbot: QtBot, tmp_path: Path
) -> None:
    records = RecordsStore(tmp_path / "records.db")
    followup = FollowupStore(tmp_path / "followup.db")
    email_id = records.record_sent(
        sent_email("alicja@client.example", subject="Oferta Q4", message_id="<q4@rep.example>")
    )
    records.log_copy(
        email_id, LoggedCopy(html="<p>Our offer</p>", text="Our offer", attachments=())
    )
    followup.add_reminder(
        email_id=email_id, message_id="<q4@rep.example>", subject="Oferta Q4",
        recipient="alicja@client.example", name="Alicja Nowak", sent_at=NOW.timestamp(),
        due_at=NOW.timestamp(), delay="3d",
    )  # fmt: skip
    [reminder] = followup.reminders()
    followup.settle_reminder(reminder.id, "fired")
    note = Notification(
        event=None, type="reminder", message_id="<q4@rep.example>", subject="Oferta Q4",
        recipient="alicja@client.example", anonymous=False,
        title="No reply from Alicja Nowak to “Oferta Q4” in 3 days",
        body="Sent Wed 2 Dec 10:00. Click to open the record, write a follow-up or snooze.",
        at="2026-12-07T16:00:00.000Z", email_id=email_id,
    )  # fmt: skip
    opened: list[int] = []
    written: list[FollowUpFill] = []
    window = ReminderWindow(
        note, followup, records, clock=NOW.timestamp, open_email=opened.append,
        write=written.append,
    )  # fmt: skip
    qtbot.addWidget(window)
    window.show()
    assert window.title.text() == note.title
    window.open_button.click()
    assert opened == [email_id]
    window.write_follow_up()
    [reply] = written
    assert reply.fill.to == ("alicja@client.example",) and reply.fill.subject == "Re: Oferta Q4"
    assert reply.in_reply_to == "<q4@rep.example>" and "&gt; Our offer" in (reply.fill.html or "")
    # The compose window sends it in the thread.
    sent: list[IncomingMessage] = []
    composing = compose(qtbot, sent)
    composing.reply_thread = (reply.in_reply_to, reply.references)
    raw = build_message(composing.draft(), NOW)
    parsed = email.message_from_bytes(raw, policy=default_policy)
    assert parsed["In-Reply-To"] == "<q4@rep.example>" and parsed["References"]
    window.snooze(3)
    [again] = followup.reminders()
    assert again.due_at == NOW.timestamp() + 3 * 86400
    followup.close()
    records.close()
