"""The Scheduled window: what waits to be sent later, with Send now, Change time, Edit and
Cancel.

It changes the follow-up store (agent/followup/store.py) and nothing else; the
running agent picks each change up on its next pass. Every change is conditional
on the email still waiting, so a click that races the agent sending it says so
instead of doing anything twice. "Edit" takes the email out of the schedule and
opens it in a compose window, to be sent or scheduled again from there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo

from PySide6.QtCore import QTimer
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.agent.followup.store import FollowupStore, ScheduledMail
from mailbeacon.core.language import ENGLISH, Language, mark
from mailbeacon.tray.views.compose.later import AskTime, ask_time_dialog, local_zone
from mailbeacon.tray.views.compose.widgets import Confirm, confirm_dialog
from mailbeacon.tray.views.labels import plain_label, show_status
from mailbeacon.tray.views.scheduled.model import ScheduledModel
from mailbeacon.tray.views.tables import setup_read_only_table

log = logging.getLogger(__name__)

REFRESH_MS = 2000
EMPTY = mark("Nothing is waiting. In a new email, choose “Send later…” to schedule one.")
GONE = mark("That email is no longer waiting: it was sent or cancelled meanwhile.")

EditScheduled = Callable[[ScheduledMail, bytes], None]


class ScheduledWindow(QWidget):
    """The list of waiting emails and what the rep can do with each."""

    def __init__(
        self,
        store: FollowupStore,
        *,
        clock: Callable[[], float],
        zone: Callable[[], tzinfo] = local_zone,
        ask_time: AskTime = ask_time_dialog,
        confirm: Confirm = confirm_dialog,
        edit: EditScheduled | None = None,
        parent: QWidget | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(parent)
        self._tr = tr
        self._store = store
        self._clock = clock
        self._zone = zone
        self._ask_time = ask_time
        self._confirm = confirm
        self._edit = edit
        self.setWindowTitle(tr.t("Scheduled — MailBeacon"))
        self.resize(820, 360)
        self.model = ScheduledModel(zone, self, tr)
        self.table = QTableView()
        self.table.setModel(self.model)
        setup_read_only_table(self.table, ((0, 190), (1, 230), (2, 250)))
        self.empty_label = plain_label(tr.t(EMPTY), wrap=True)
        self.send_now_button = QPushButton(tr.t("Send &now"))
        self.change_button = QPushButton(tr.t("Change &time…"))
        self.edit_button = QPushButton(tr.t("&Edit…"))
        self.cancel_button = QPushButton(tr.t("&Cancel email"))
        self.status = QLabel()
        self._lay_out()
        self.send_now_button.clicked.connect(self.send_now)
        self.change_button.clicked.connect(self.change_time)
        self.edit_button.clicked.connect(self.edit)
        self.cancel_button.clicked.connect(self.cancel)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.reload)
        self._timer.start()
        self.reload()

    def _lay_out(self) -> None:
        buttons = QHBoxLayout()
        for button in (self.send_now_button, self.change_button, self.edit_button,
                       self.cancel_button):  # fmt: skip
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

    def reload(self) -> None:
        """Read the waiting emails again, keeping the selected one selected."""
        chosen = self.selected()
        self.model.set_rows(self._store.scheduled())
        self.empty_label.setVisible(self.model.rowCount() == 0)
        if chosen is not None:
            for row in range(self.model.rowCount()):
                item = self.model.row_at(self.model.index(row, 0))
                if item is not None and item.id == chosen.id:
                    self.table.selectRow(row)
        self._update_buttons()

    def selected(self) -> ScheduledMail | None:
        """The email the rep selected."""
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.model.row_at(rows[0]) if rows else None

    def select_row(self, row: int) -> None:
        """Select one row (tests, keyboard)."""
        self.table.selectRow(row)

    def send_now(self) -> None:
        """Due now: the agent sends it within a second."""
        item = self.selected()
        if item is None:
            return
        self._after(self._store.reschedule(item.id, self._clock()), self._tr.t("Sending now."))

    def change_time(self) -> None:
        """Ask for a new time (in the rep's zone)."""
        item = self.selected()
        if item is None:
            return
        proposed = datetime.fromtimestamp(item.send_at, UTC)
        chosen = self._ask_time(self, proposed)
        if chosen is None:
            return
        tr = self._tr.in_zone(self._zone())
        done = self._store.reschedule(item.id, chosen.timestamp())
        when = tr.t("{weekday} {date} {time}", weekday=tr.weekday(chosen),
                    date=tr.short_day(chosen), time=tr.clock(chosen))
        self._after(done, tr.t("Now sends {when}.", when=when))

    def cancel(self) -> None:
        """Cancel it for good, after asking."""
        item = self.selected()
        tr = self._tr
        if item is None or not self._confirm(self, tr.t("Cancel this email? It will not be sent.")):
            return
        self._after(self._store.cancel_scheduled(item.id), tr.t("Cancelled: it will not be sent."))

    def edit(self) -> None:
        """Take it out of the schedule and open it in a compose window."""
        item = self.selected()
        if item is None or self._edit is None:
            return
        data = self._store.scheduled_data(item.id)
        if not self._store.cancel_scheduled(item.id):
            self._after(False, "")
            return
        self._edit(item, data)
        self._after(True, self._tr.t("Opened for editing; send or schedule it again from there."))

    def _after(self, done: bool, text: str) -> None:
        show_status(self.status, text if done else self._tr.t(GONE), error=not done)
        self.reload()

    def _update_buttons(self, *_: object) -> None:
        chosen = self.selected() is not None
        for button in (self.send_now_button, self.change_button, self.cancel_button):
            button.setEnabled(chosen)
        self.edit_button.setEnabled(chosen and self._edit is not None)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._timer.stop()
        super().closeEvent(event)

    def showEvent(self, event: QShowEvent) -> None:
        self._timer.start()
        self.reload()
        super().showEvent(event)
