"""What a "No reply from …" reminder opens: the reminder with its three actions.

Open record (the sent email's own view), Write follow-up (a compose window that
answers in the same thread: ``Re:`` subject, In-Reply-To and References, the
logged text quoted) and Snooze (tomorrow, or in three days). The agent decided
that the reminder is due (agent/followup/loop.py); this only offers what to do.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QPushButton, QVBoxLayout, QWidget

from mailbeacon.agent.followup.store import FollowupStore, Reminder
from mailbeacon.agent.notifications.model import Notification
from mailbeacon.agent.records.model import EmailRecord
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.core.language import ENGLISH, Language, mark
from mailbeacon.tray.views.email.actions import ComposeFill, reply_subject
from mailbeacon.tray.views.labels import plain_label, show_status

DAY = 86400.0
SNOOZES = ((mark("Until tomorrow"), 1), (mark("For 3 days"), 3), (mark("For a week"), 7))


@dataclass(frozen=True, slots=True)
class FollowUpFill:
    """A threaded reply: what compose shows, and the thread headers it sends."""

    fill: ComposeFill
    in_reply_to: str
    references: str


def follow_up_reply(
    store: RecordsStore, email: EmailRecord, recipient: str, tr: Language = ENGLISH
) -> FollowUpFill:
    """A reply to ``recipient`` in the thread of ``email``, quoting its logged text."""
    copy = store.logged_copy(email.id)
    quoted = ""
    note = tr.t("Written as a reply in the same thread.")
    if copy is not None and (copy.text or copy.html):
        lines = (copy.text or "").splitlines() or [email.subject]
        quoted = "".join(f"&gt; {html.escape(line)}<br>" for line in lines)
    else:
        note = tr.t("Written as a reply in the same thread. The email was sent without Log, "
                    "so its text is not quoted.")
    when = email.sent_at[:10]
    wrote = tr.t("On {date} I wrote:", date=html.escape(when))
    body = f"<p></p><p>{wrote}</p><blockquote>{quoted}</blockquote>" if quoted else None
    return FollowUpFill(
        ComposeFill(to=(recipient,), subject=reply_subject(email.subject), html=body, note=note),
        email.message_id,
        email.message_id,
    )


def reminder_actions(
    notification: Notification,
    followup: FollowupStore,
    records: RecordsStore,
    *,
    clock: Callable[[], float],
    open_email: Callable[[int], None],
    write: Callable[[FollowUpFill], None],
    tr: Language = ENGLISH,
) -> list[tuple[str, Callable[[], None]]]:
    """The notification's own buttons: Open record, Write follow-up, Snooze (a day)."""
    email_id, recipient = notification.email_id, notification.recipient
    if email_id is None or not recipient:
        return []

    def write_follow_up() -> None:
        email = records.email(email_id)
        if email is not None:
            write(follow_up_reply(records, email, recipient, tr))

    def snooze() -> None:
        reminder = followup.reminder_for(email_id, recipient)
        if reminder is not None:
            followup.snooze_reminder(reminder.id, clock() + DAY)

    return [
        (tr.t("Open record"), lambda: open_email(email_id)),
        (tr.t("Write follow-up"), write_follow_up),
        (tr.t("Snooze"), snooze),
    ]


class ReminderWindow(QWidget):
    """One reminder and its actions."""

    def __init__(
        self,
        notification: Notification,
        followup: FollowupStore,
        records: RecordsStore,
        *,
        clock: Callable[[], float],
        open_email: Callable[[int], None],
        write: Callable[[FollowUpFill], None],
        parent: QWidget | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(parent)
        self._tr = tr
        self._notification = notification
        self._followup = followup
        self._records = records
        self._clock = clock
        self._open_email = open_email
        self._write = write
        self.setWindowTitle(tr.t("Reminder — MailBeacon"))
        self.title = plain_label(notification.title, wrap=True)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.body = plain_label(notification.body, wrap=True)
        self.open_button = QPushButton(tr.t("&Open record"))
        self.write_button = QPushButton(tr.t("&Write follow-up"))
        self.snooze_button = QPushButton(tr.t("&Snooze"))
        self.snooze_menu = QMenu(self)
        for text, days in SNOOZES:
            action = self.snooze_menu.addAction(tr.t(text))
            action.triggered.connect(lambda _c=False, d=days: self.snooze(d))
        self.snooze_button.setMenu(self.snooze_menu)
        self.status = QLabel()
        buttons = QHBoxLayout()
        for button in (self.open_button, self.write_button, self.snooze_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.body)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        self.open_button.clicked.connect(self.open_record)
        self.write_button.clicked.connect(self.write_follow_up)
        self.setMinimumWidth(560)

    def reminder(self) -> Reminder | None:
        """The stored reminder this notification told of."""
        if self._notification.email_id is None or not self._notification.recipient:
            return None
        return self._followup.reminder_for(
            self._notification.email_id, self._notification.recipient
        )

    def open_record(self) -> None:
        """The sent email's own view (recipients, timeline, follow-ups)."""
        if self._notification.email_id is not None:
            self._open_email(self._notification.email_id)

    def write_follow_up(self) -> None:
        """A compose window replying in the same thread."""
        email_id, recipient = self._notification.email_id, self._notification.recipient
        email = self._records.email(email_id) if email_id is not None else None
        if email is None or not recipient:
            show_status(self.status, self._tr.t("That email is no longer in the records."),
                        error=True)
            return
        self._write(follow_up_reply(self._records, email, recipient, self._tr))
        self.close()

    def snooze(self, days: int) -> None:
        """Remind again in ``days`` days."""
        reminder = self.reminder()
        if reminder is None or not self._followup.snooze_reminder(
            reminder.id, self._clock() + days * DAY
        ):
            show_status(self.status, self._tr.t("This reminder cannot be snoozed any more."),
                        error=True)
            return
        show_status(self.status, self._tr.n("Snoozed for {count} day.", "Snoozed for {count} days.",
                                            days))
        self.close()
