"""The Sequences window's two tables: the steps with their results, and the contacts.

What is shown is what ``agent/followup/status.py`` says (the same as ``mailbeacon
sequence status``); times in the rep's zone; text from outside as plain text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

from PySide6.QtCore import QObject, Qt

from mailbeacon.agent.followup.status import StepFigures
from mailbeacon.agent.followup.store import Enrollment
from mailbeacon.core.language import ENGLISH, Language, mark
from mailbeacon.tray.views.tables import RowTableModel

STEP_HEADERS = (mark("Step"), mark("After"), mark("Subject"), mark("Sent"), mark("Opens"),
                mark("Clicks"), mark("Replies"))
CONTACT_HEADERS = (mark("Contact"), mark("Steps sent"), mark("State"), mark("Next send"))
STATE_WORDS = {
    "active": mark("in the sequence"),
    "replied": mark("replied: left"),
    "bounced": mark("bounced: left"),
    "removed": mark("removed by you"),
    "finished": mark("got every step"),
}


def delay_words(delay: str, number: int, tr: Language = ENGLISH) -> str:
    """``2d`` → "2 days"; the first step counts from enrolment."""
    amount, unit = int(delay[:-1] or 0), delay[-1:]
    if amount == 0:
        return tr.t("at once") if number == 1 else tr.t("right after")
    if unit == "s":
        return tr.n("{count} second", "{count} seconds", amount)
    if unit == "m":
        return tr.n("{count} minute", "{count} minutes", amount)
    if unit == "h":
        return tr.n("{count} hour", "{count} hours", amount)
    return tr.n("{count} day", "{count} days", amount)


class StepsModel(RowTableModel[StepFigures]):
    """One row per step."""

    def __init__(self, parent: QObject | None = None, tr: Language = ENGLISH) -> None:
        super().__init__(tuple(tr.t(h) for h in STEP_HEADERS), parent)
        self._tr = tr

    def cell_data(self, row: StepFigures, column: int, role: int) -> Any:
        """Step number, delay, subject and what people did."""
        if role == Qt.ItemDataRole.TextAlignmentRole and column >= 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        cells = (
            str(row.number), delay_words(row.delay, row.number, self._tr), row.subject,
            str(row.sent),
            str(row.opens), str(row.clicks), str(row.replies),
        )  # fmt: skip
        return cells[column] if 0 <= column < len(cells) else None


class EnrolledModel(RowTableModel[Enrollment]):
    """One row per enrolled contact."""

    def __init__(
        self,
        steps: Callable[[], int],
        zone: Callable[[], tzinfo],
        parent: QObject | None = None,
        tr: Language = ENGLISH,
    ) -> None:
        super().__init__(tuple(tr.t(h) for h in CONTACT_HEADERS), parent)
        self._tr = tr
        self._steps = steps
        self._zone = zone

    def cell_data(self, row: Enrollment, column: int, role: int) -> Any:
        """Who, how far, in or out, and when the next step goes."""
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        cells = (
            row.email, self._tr.t("{sent} of {count}", sent=row.sent, count=self._steps()),
            self._tr.t(STATE_WORDS[row.state]) if row.state in STATE_WORDS else row.state,
            self._when(row),
        )  # fmt: skip
        return cells[column] if 0 <= column < len(cells) else None

    def _when(self, row: Enrollment) -> str:
        if row.next_at is None:
            return "—"
        tr = self._tr.in_zone(self._zone())
        at = datetime.fromtimestamp(row.next_at, UTC)
        return tr.t("{weekday} {date} {time}", weekday=tr.weekday(at), date=tr.short_day(at),
                    time=tr.clock(at))
