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
from mailbeacon.tray.views.tables import RowTableModel

STEP_HEADERS = ("Step", "After", "Subject", "Sent", "Opens", "Clicks", "Replies")
CONTACT_HEADERS = ("Contact", "Steps sent", "State", "Next send")
STATE_WORDS = {
    "active": "in the sequence",
    "replied": "replied: left",
    "bounced": "bounced: left",
    "removed": "removed by you",
    "finished": "got every step",
}
UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}


def delay_words(delay: str, number: int) -> str:
    """``2d`` → "2 days"; the first step counts from enrolment."""
    amount, unit = int(delay[:-1] or 0), delay[-1:]
    if amount == 0:
        return "at once" if number == 1 else "right after"
    word = UNITS.get(unit, "day") + ("" if amount == 1 else "s")
    return f"{amount} {word}"


class StepsModel(RowTableModel[StepFigures]):
    """One row per step."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(STEP_HEADERS, parent)

    def cell_data(self, row: StepFigures, column: int, role: int) -> Any:
        """Step number, delay, subject and what people did."""
        if role == Qt.ItemDataRole.TextAlignmentRole and column >= 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        cells = (
            str(row.number), delay_words(row.delay, row.number), row.subject, str(row.sent),
            str(row.opens), str(row.clicks), str(row.replies),
        )  # fmt: skip
        return cells[column] if 0 <= column < len(cells) else None


class EnrolledModel(RowTableModel[Enrollment]):
    """One row per enrolled contact."""

    def __init__(
        self, steps: Callable[[], int], zone: Callable[[], tzinfo], parent: QObject | None = None
    ) -> None:
        super().__init__(CONTACT_HEADERS, parent)
        self._steps = steps
        self._zone = zone

    def cell_data(self, row: Enrollment, column: int, role: int) -> Any:
        """Who, how far, in or out, and when the next step goes."""
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        cells = (
            row.email, f"{row.sent} of {self._steps()}", STATE_WORDS.get(row.state, row.state),
            self._when(row),
        )  # fmt: skip
        return cells[column] if 0 <= column < len(cells) else None

    def _when(self, row: Enrollment) -> str:
        if row.next_at is None:
            return "—"
        at = datetime.fromtimestamp(row.next_at, UTC).astimezone(self._zone())
        return f"{at:%a} {at.day} {at:%b %H:%M}"
