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
from mailbeacon.core.language import ENGLISH, Language, mark
from mailbeacon.tray.views.tables import SORT_ROLE, RowTableModel

HEADERS = (mark("Sends at"), mark("To"), mark("Subject"), mark("Remind if no reply"))


def remind_words(remind: str | None, tr: Language = ENGLISH) -> str:
    """``3d`` → "in 3 days"; "as in Settings" when the email did not say."""
    if remind is None:
        return tr.t("as in Settings")
    amount, unit = int(remind[:-1] or 0), remind[-1:]
    if amount == 0:
        return tr.t("no")
    if unit == "s":
        return tr.n("in {count} second", "in {count} seconds", amount)
    if unit == "m":
        return tr.n("in {count} minute", "in {count} minutes", amount)
    if unit == "h":
        return tr.n("in {count} hour", "in {count} hours", amount)
    return tr.n("in {count} day", "in {count} days", amount)


class ScheduledModel(RowTableModel[ScheduledMail]):
    """Waiting emails; ``ROW_ROLE`` answers the ``ScheduledMail``."""

    def __init__(
        self, zone: Callable[[], tzinfo], parent: QObject | None = None, tr: Language = ENGLISH
    ) -> None:
        super().__init__(tuple(tr.t(h) for h in HEADERS), parent)
        self._zone = zone
        self._tr = tr

    def cell_data(self, row: ScheduledMail, column: int, role: int) -> Any:
        """When, to whom, what, and the reminder it carries."""
        if role == SORT_ROLE:
            return row.send_at if column == 0 else None
        tr = self._tr.in_zone(self._zone())
        at = datetime.fromtimestamp(row.send_at, UTC)
        if role == Qt.ItemDataRole.ToolTipRole and column == 0:
            return tr.full(at)
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        cells = (
            tr.t("{weekday} {date}, {time}", weekday=tr.weekday(at), date=tr.day(at),
                 time=tr.clock(at)),
            row.to_text,
            " ".join(row.subject.split()) or tr.t("(no subject)"),
            remind_words(row.remind, tr),
        )
        return cells[column] if 0 <= column < len(cells) else None
