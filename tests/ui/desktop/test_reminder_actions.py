"""A reminder's notification carries its own buttons — Open record, Write follow-up,
Snooze — over a real (private) session bus to a notification server, and each runs on
the UI thread (issue 17). Where the desktop draws no buttons, a click opens the
reminder's window, which offers the same three."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pytestqt.qtbot import QtBot

from mailbeacon.agent.followup.store import FollowupStore
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.tray.app import TrayApp
from mailbeacon.tray.assets import IconSet
from mailbeacon.tray.desktop.freedesktop import FreedesktopNotifier
from mailbeacon.tray.views.reminder import FollowUpFill, reminder_actions
from tests.helpers.records import sent_email
from tests.helpers.tray import FakeNotificationServer, RecordingNotifier, sample_notification

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC).timestamp()


def _reminder(tmp_path: Path) -> tuple[FollowupStore, RecordsStore, int]:
    records = RecordsStore(tmp_path / "records.db")
    followup = FollowupStore(tmp_path / "followup.db")
    email_id = records.record_sent(
        sent_email("alicja@client.example", subject="Oferta Q4", message_id="<q4@rep.example>")
    )
    followup.add_reminder(
        email_id=email_id, message_id="<q4@rep.example>", subject="Oferta Q4",
        recipient="alicja@client.example", name="Alicja Nowak", sent_at=NOW, due_at=NOW,
        delay="3d",
    )  # fmt: skip
    [reminder] = followup.reminders()
    followup.settle_reminder(reminder.id, "fired")
    return followup, records, email_id


def test_the_notification_has_the_three_buttons_and_each_works(
    qtbot: QtBot, icons: IconSet, notification_server: FakeNotificationServer, tmp_path: Path
) -> None:
    followup, records, email_id = _reminder(tmp_path)
    note = sample_notification(
        type="reminder", event=None, recipient="alicja@client.example", email_id=email_id,
        title="No reply from Alicja Nowak to “Oferta Q4” in 3 days",
    )  # fmt: skip
    opened: list[tuple[int, threading.Thread]] = []
    written: list[FollowUpFill] = []
    actions = reminder_actions(
        note, followup, records, clock=lambda: NOW,
        open_email=lambda i: opened.append((i, threading.current_thread())),
        write=written.append,
    )  # fmt: skip
    notifier = FreedesktopNotifier.open(icons.app_icon_path())
    assert notifier is not None
    try:
        for _ in range(3):
            notifier.show_with_actions(note.title, note.body, lambda: None, actions)
        qtbot.waitUntil(lambda: len(notification_server.calls) == 3, timeout=5000)
        assert notification_server.calls[0][5] == [
            "default", "Open",
            "mailbeacon-0", "Open record",
            "mailbeacon-1", "Write follow-up",
            "mailbeacon-2", "Snooze",
        ]  # fmt: skip
        notification_server.invoke_action(1, "mailbeacon-0")
        qtbot.waitUntil(lambda: len(opened) == 1, timeout=5000)
        notification_server.invoke_action(2, "mailbeacon-1")
        qtbot.waitUntil(lambda: len(written) == 1, timeout=5000)
        notification_server.invoke_action(3, "mailbeacon-2")
        qtbot.waitUntil(lambda: followup.reminders() != [], timeout=5000)
    finally:
        notifier.close()
    assert opened == [(email_id, threading.main_thread())]
    assert written[0].in_reply_to == "<q4@rep.example>"
    assert written[0].fill.subject == "Re: Oferta Q4"
    assert followup.reminders()[0].due_at == NOW + 86400
    followup.close()
    records.close()


class ButtonNotifier(RecordingNotifier):
    """A backend that draws buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.buttons: list[list[str]] = []

    def show_with_actions(
        self,
        title: str,
        body: str,
        on_click: Callable[[], None] | None,
        actions: list[tuple[str, Callable[[], None]]],
    ) -> None:
        self.show(title, body, on_click)
        self.buttons.append([label for label, _run in actions])


def test_the_tray_gives_only_reminders_their_buttons(qtbot: QtBot, icons: IconSet) -> None:
    clicked: list[str] = []
    app = TrayApp(icons, open_record=lambda n: clicked.append(n.type), platform="linux")
    app.notification_actions = lambda n: [("Snooze", lambda: None)] if n.type == "reminder" else []
    buttons = ButtonNotifier()
    app.set_notifier(buttons)
    app.on_notification(sample_notification())
    app.on_notification(sample_notification(type="reminder", title="No reply from …"))
    assert buttons.buttons == [["Snooze"]]
    assert [s.title for s in buttons.shown] == ["Alicja opened “Oferta Q4”", "No reply from …"]
    plain = RecordingNotifier()  # a balloon or the toast: a click opens the reminder window
    app.set_notifier(plain)
    app.on_notification(sample_notification(type="reminder", title="No reply from …"))
    on_click = plain.shown[0].on_click
    assert on_click is not None
    on_click()
    assert clicked == ["reminder"]
    app.close()
