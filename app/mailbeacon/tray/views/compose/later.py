"""Compose's follow-up controls: "Send later…" and "Remind me if no reply in N days".

"Send later…" offers tomorrow morning, Monday 9:00 and a picked time, all in the
rep's time zone (the times are computed by ``core/followup_time.py``); the choice
goes to the relay as ``X-MailBeacon-Send-At`` and the agent keeps the email until
then. The reminder goes as ``X-MailBeacon-Remind: Nd`` (or ``no`` when unticked,
so the Settings default does not add one the rep took off).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo

from PySide6.QtCore import QDateTime, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from mailbeacon.core.followup_time import Delay, next_monday_nine, tomorrow_morning
from mailbeacon.core.language import ENGLISH, Language

# parent, the proposed time (aware): the chosen time, or None when cancelled
AskTime = Callable[[QWidget, datetime], datetime | None]


def local_zone() -> tzinfo:
    """The rep's zone: the machine's, read each time."""
    return datetime.now().astimezone().tzinfo or UTC


def ask_time_dialog(
    parent: QWidget, proposed: datetime, tr: Language = ENGLISH
) -> datetime | None:
    """A date-and-time picker in the rep's zone; None when cancelled."""
    dialog = QDialog(parent)
    dialog.setWindowTitle(tr.t("Send later — MailBeacon"))
    edit = QDateTimeEdit(QDateTime.fromSecsSinceEpoch(int(proposed.timestamp())))
    edit.setCalendarPopup(True)
    edit.setDisplayFormat("ddd d MMM yyyy HH:mm")
    edit.setMinimumDateTime(QDateTime.currentDateTime())
    buttons = QDialogButtonBox(
        QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
    )
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(QLabel(tr.t("Send this email at (your time):")))
    layout.addWidget(edit)
    layout.addWidget(buttons)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return datetime.fromtimestamp(edit.dateTime().toSecsSinceEpoch(), UTC)


def describe_time(at: datetime, zone: tzinfo, tr: Language = ENGLISH) -> str:
    """ "Tue 8 Dec 08:00" in the rep's zone ("wt. 8 gru 08:00")."""
    here = tr.in_zone(zone)
    return here.t("{weekday} {date} {time}", weekday=here.weekday(at),
                  date=here.short_day(at), time=here.clock(at))


class LaterButton(QPushButton):
    """ "Send later…" with its menu; ``chosen(datetime)`` carries the UTC time picked."""

    chosen = Signal(object)

    def __init__(
        self,
        now: Callable[[], datetime],
        zone: Callable[[], tzinfo] = local_zone,
        ask_time: AskTime | None = None,
        parent: QWidget | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(tr.t("Send &later…"), parent)
        self._tr = tr
        self._now = now
        self._zone = zone
        self._ask_time: AskTime = ask_time or (
            lambda parent, proposed: ask_time_dialog(parent, proposed, tr)
        )
        self.later_menu = QMenu(self)
        self.tomorrow_action = self.later_menu.addAction(tr.t("Tomorrow morning"))
        self.monday_action = self.later_menu.addAction(tr.t("Monday 9:00"))
        self.pick_action = self.later_menu.addAction(tr.t("Pick a time…"))
        self.tomorrow_action.triggered.connect(
            lambda: self.chosen.emit(tomorrow_morning(self._now(), self._zone()))
        )
        self.monday_action.triggered.connect(
            lambda: self.chosen.emit(next_monday_nine(self._now(), self._zone()))
        )
        self.pick_action.triggered.connect(self.pick)
        self.later_menu.aboutToShow.connect(self.refresh_labels)
        self.setMenu(self.later_menu)
        self.refresh_labels()

    def refresh_labels(self) -> None:
        """Name the actual times, so the rep sees what "tomorrow" means."""
        now, zone, tr = self._now(), self._zone(), self._tr
        self.tomorrow_action.setText(tr.t(
            "Tomorrow morning ({when})",
            when=describe_time(tomorrow_morning(now, zone), zone, tr),
        ))
        self.monday_action.setText(tr.t(
            "Monday 9:00 ({when})", when=describe_time(next_monday_nine(now, zone), zone, tr)
        ))

    def pick(self) -> None:
        """Ask for a time; a time in the past is not offered."""
        chosen = self._ask_time(self, tomorrow_morning(self._now(), self._zone()))
        if chosen is not None:
            self.chosen.emit(chosen)


class RemindControls(QWidget):
    """ "Remind me if no reply in [N] days" — ticked when the Settings default is set."""

    def __init__(
        self, default_days: int, parent: QWidget | None = None, tr: Language = ENGLISH
    ) -> None:
        super().__init__(parent)
        self.box = QCheckBox(tr.t("Re&mind me if no reply in"))
        self.days = QSpinBox()
        self.days.setRange(1, 60)
        self.days.setValue(default_days or 3)
        self.box.setChecked(default_days > 0)
        self.days.setEnabled(default_days > 0)
        self.box.toggled.connect(self.days.setEnabled)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.box)
        layout.addWidget(self.days)
        layout.addWidget(QLabel(tr.t("days")))
        layout.addStretch(1)

    def delay(self) -> Delay:
        """What goes to the relay: N days, or 0 (explicitly none)."""
        return Delay(self.days.value() if self.box.isChecked() else 0, "d")
