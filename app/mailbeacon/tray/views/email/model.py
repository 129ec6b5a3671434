"""The email view's tables and words: one row per recipient, and the email's timeline.

Times show relative to now ("5 min ago", "yesterday") with the full local time on
hover: a rep asks "did they read it yet?", not "at 14:03:27 UTC?". Everything
from the records (names, addresses, subjects, URLs, reasons) is plain text.
The recipients' cells say "Not opened yet" rather than a zero, and a recipient
whose delivery failed says so first: that is the one thing to act on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from PySide6.QtCore import QObject, Qt

from mailbeacon.agent.notifications.wording import SOMEONE, link_label
from mailbeacon.agent.records.email_view import RecipientActivity
from mailbeacon.agent.records.model import ActivityRow
from mailbeacon.core.events import EventType, Verdict
from mailbeacon.core.uainfo import describe
from mailbeacon.tray.views.tables import SORT_ROLE, RowTableModel, greyed_brush

Clock = Callable[[], datetime]

NOT_OPENED = "Not opened yet"
NOT_DELIVERED = "Could not be delivered"
VERDICT_WORDS: dict[str, str] = {
    Verdict.BOT: "Not a person",
    Verdict.PROXY: "Image proxy",
    Verdict.SELF: "You",
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _moment(at: str) -> datetime | None:
    try:
        return datetime.fromisoformat(at)
    except ValueError:
        return None


def relative_when(at: str | None, now: datetime) -> str:
    """A stored time said the way a person would: "just now", "5 min ago", "yesterday"."""
    moment = _moment(at) if at else None
    if moment is None:
        return at or ""
    seconds = int((now - moment).total_seconds())
    if seconds < 60:  # a clock a little ahead of ours is "just now" too
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return _days_ago(moment.astimezone(), now.astimezone(), seconds)


def _days_ago(local: datetime, today: datetime, seconds: int) -> str:
    days = (today.date() - local.date()).days
    if days == 0:
        return f"{seconds // 3600} h ago"
    if days == 1:
        return f"yesterday {local:%H:%M}"
    if days < 7:
        return f"{local:%A %H:%M}"
    return f"{local.day} {local:%b %Y}"


def full_when(at: str | None) -> str:
    """The full local time, for the tooltip ("Tuesday 1 January 2030, 10:00:05")."""
    moment = _moment(at) if at else None
    if moment is None:
        return at or ""
    local = moment.astimezone()
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M:%S}"


# ---------------------------------------------------------------- recipients


class RecipientColumn(IntEnum):
    """The recipients table's columns."""

    WHO = 0
    STATUS = 1
    OPENS = 2
    CLICKS = 3
    REPLIES = 4


RECIPIENT_HEADERS = ("Recipient", "Status", "Opens", "Clicks", "Replies")
FIELD_NOTES = {"cc": " (Cc)", "bcc": " (Bcc)"}
SOMEONE_NOTE = (
    "Several recipients shared one tracking image, or data privacy keeps this person "
    "unnamed: MailBeacon cannot say who it was."
)


def who_text(person: RecipientActivity) -> str:
    """``Alicja Nowak <alicja@client.example>``; "Someone" for anonymous events."""
    if not person.email:
        return f"{SOMEONE} (cannot be told apart)"
    name = f"{person.name} <{person.email}>" if person.name else person.email
    return name + FIELD_NOTES.get(person.field, "")


def status_text(person: RecipientActivity, now: datetime) -> str:
    """The one thing the rep wants to know about this recipient."""
    if person.failed:
        return NOT_DELIVERED
    if person.last_reply:
        return f"Replied {relative_when(person.last_reply, now)}"
    if person.last_click:
        return f"Clicked {relative_when(person.last_click, now)}"
    if person.last_open:
        return f"Opened {relative_when(person.last_open, now)}"
    return NOT_OPENED


def count_text(count: int, last: str | None, now: datetime) -> str:
    """``3 · 5 min ago`` (the count and the last one); an em dash for none."""
    if not count:
        return "—"
    return f"{count} · {relative_when(last, now)}"


def _latest(person: RecipientActivity) -> str | None:
    times = [t for t in (person.last_open, person.last_click, person.last_reply) if t]
    return max(times) if times else None


class RecipientsModel(RowTableModel[RecipientActivity]):
    """Each recipient with their opens, clicks and replies (human ones only)."""

    def __init__(self, clock: Clock = _utc_now, parent: QObject | None = None) -> None:
        super().__init__(RECIPIENT_HEADERS, parent)
        self._clock = clock

    def cell_data(self, row: RecipientActivity, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, column)
        if role == SORT_ROLE:
            return (row.opens, row.clicks, row.replies)[column - 2] if column >= 2 else None
        return None

    def _text(self, row: RecipientActivity, column: int) -> str | None:
        now = self._clock()
        match column:
            case RecipientColumn.WHO:
                return who_text(row)
            case RecipientColumn.STATUS:
                return status_text(row, now)
            case RecipientColumn.OPENS:
                return count_text(row.opens, row.last_open, now)
            case RecipientColumn.CLICKS:
                return count_text(row.clicks, row.last_click, now)
            case RecipientColumn.REPLIES:
                return count_text(row.replies, row.last_reply, now)
        return None

    @staticmethod
    def _tooltip(row: RecipientActivity, column: int) -> str | None:
        if column == RecipientColumn.WHO:
            return SOMEONE_NOTE if not row.email else row.email
        last: str | None = {
            int(RecipientColumn.STATUS): _latest(row),
            RecipientColumn.OPENS: row.last_open,
            RecipientColumn.CLICKS: row.last_click,
            RecipientColumn.REPLIES: row.last_reply,
        }.get(column)
        return full_when(last) if last else None


# ---------------------------------------------------------------- timeline


class TimelineColumn(IntEnum):
    """The timeline's columns."""

    WHEN = 0
    WHAT = 1
    DETAILS = 2


TIMELINE_HEADERS = ("When", "What happened", "Details")


def actor_text(row: ActivityRow) -> str:
    """Who did it: the contact's name or address, else "Someone"."""
    event = row.event
    if event.contact and not event.anonymous:
        return row.contact_name or event.contact
    return SOMEONE


def what_text(row: ActivityRow) -> str:
    """A sentence: "Alicja Nowak opened it", "Bob replied", "Could not be delivered"."""
    event = row.event
    if event.type == EventType.DELIVERY_FAILED:
        recipients = event.details.get("recipients")
        named = ", ".join(str(r) for r in recipients) if isinstance(recipients, list) else ""
        return f"{NOT_DELIVERED} to {named}" if named else NOT_DELIVERED
    who = actor_text(row)
    if event.type == EventType.CLICK:
        return f"{who} clicked {link_label(event.url)}"
    if event.type == EventType.REPLY:
        return f"{who} replied"
    if event.type == EventType.OPEN:
        return f"{who} opened it"
    return f"{who}: {event.type}"


def details_text(row: ActivityRow) -> str:
    """With what, and the notes: "Chrome on Windows · possibly forwarded"; for what
    no person made, what it was and why MailBeacon thinks so."""
    event = row.event
    parts: list[str] = []
    if event.type == EventType.DELIVERY_FAILED:
        return event.reason
    if event.verdict != Verdict.HUMAN:
        verdict = VERDICT_WORDS.get(event.verdict, event.verdict.capitalize())
        parts.append(f"{verdict}: {event.reason}" if event.reason else verdict)
    if event.type in (EventType.OPEN, EventType.CLICK) and event.user_agent:
        parts.append(describe(event.user_agent).label)
    via = event.details.get("via")
    if via:
        parts.append(f"via {via}")
    if event.inferred:
        parts.append("counted from the click" if event.type == EventType.OPEN else "inferred")
    if event.possibly_forwarded:
        parts.append("possibly forwarded")
    return " · ".join(p for p in parts if p)


class EmailTimelineModel(RowTableModel[ActivityRow]):
    """The email's events, newest first; rows no person made greyed."""

    def __init__(self, clock: Clock = _utc_now, parent: QObject | None = None) -> None:
        super().__init__(TIMELINE_HEADERS, parent)
        self._clock = clock
        self._grey = greyed_brush()

    def cell_data(self, row: ActivityRow, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == TimelineColumn.WHEN:
                return full_when(row.event.at)
            # The whole address of a clicked link (the cell shows host and path).
            return row.event.url if column == TimelineColumn.WHAT else None
        if role == SORT_ROLE and column == TimelineColumn.WHEN:
            return row.event.at
        if role == Qt.ItemDataRole.ForegroundRole and not _first_class(row):
            return self._grey
        return None

    def _text(self, row: ActivityRow, column: int) -> str | None:
        if column == TimelineColumn.WHEN:
            return relative_when(row.event.at, self._clock())
        if column == TimelineColumn.WHAT:
            return what_text(row)
        return details_text(row) if column == TimelineColumn.DETAILS else None


def _first_class(row: ActivityRow) -> bool:
    """A person's event, or a delivery failure (no hit decided it): never greyed."""
    return row.event.verdict == Verdict.HUMAN or row.event.type == EventType.DELIVERY_FAILED
