"""The rows of the Scheduled window: one waiting email each, soonest first.

Times are shown in the rep's zone (the stored time is a UTC instant, so a changed
zone changes only how it reads). Text from outside is plain text (Qt shows a
model's display role as such).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

from PySide6.QtCore import QObject, Qt

from mailbeacon.agent.followup.store import ScheduledMail
from mailbeacon.tray.views.tables import SORT_ROLE, RowTableModel

HEADERS = ("Sends at", "To", "Subject", "Remind if no reply")


def remind_words(remind: str | None) -> str:
    """``3d`` → "in 3 days"; "as in Settings" when the email did not say."""
    if remind is None:
        return "as in Settings"
    amount, unit = int(remind[:-1] or 0), remind[-1:]
    if amount == 0:
        return "no"
    names = {"s": "second", "m": "minute", "h": "hour", "d": "day"}
    word = names.get(unit, "day") + ("" if amount == 1 else "s")
    return f"in {amount} {word}"


class ScheduledModel(RowTableModel[ScheduledMail]):
    """Waiting emails; ``ROW_ROLE`` answers the ``ScheduledMail``."""

    def __init__(self, zone: Callable[[], tzinfo], parent: QObject | None = None) -> None:
        super().__init__(HEADERS, parent)
        self._zone = zone

    def cell_data(self, row: ScheduledMail, column: int, role: int) -> Any:
        """When, to whom, what, and the reminder it carries."""
        if role == SORT_ROLE:
            return row.send_at if column == 0 else None
        if role == Qt.ItemDataRole.ToolTipRole and column == 0:
            at = datetime.fromtimestamp(row.send_at, UTC).astimezone(self._zone())
            return at.strftime("%A %d %B %Y, %H:%M:%S %Z")
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        at = datetime.fromtimestamp(row.send_at, UTC).astimezone(self._zone())
        cells = (
            f"{at:%a} {at.day} {at:%b %Y, %H:%M}",
            row.to_text,
            " ".join(row.subject.split()) or "(no subject)",
            remind_words(row.remind),
        )
        return cells[column] if 0 <= column < len(cells) else None
