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

from mailbeacon.agent.notifications.wording import link_label, someone
from mailbeacon.agent.records.email_view import RecipientActivity
from mailbeacon.agent.records.model import ActivityRow
from mailbeacon.core.events import EventType, Verdict
from mailbeacon.core.language import ENGLISH, Language, mark
from mailbeacon.core.reasons import say as say_reason
from mailbeacon.core.uainfo import describe
from mailbeacon.core.uainfo import label as device_label
from mailbeacon.tray.views.activity.when import full_when as feed_full_when
from mailbeacon.tray.views.activity.when import relative_when as feed_when
from mailbeacon.tray.views.tables import SORT_ROLE, RowTableModel, greyed_brush

Clock = Callable[[], datetime]

NOT_OPENED = mark("Not opened yet")
NOT_DELIVERED = mark("Could not be delivered")
VERDICT_WORDS: dict[str, str] = {
    Verdict.BOT: mark("Not a person"),
    Verdict.PROXY: mark("Image proxy"),
    Verdict.SELF: mark("You"),
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def relative_when(at: str | None, now: datetime, tr: Language = ENGLISH) -> str:
    """A stored time said the way a person would: "just now", "5 min ago", "yesterday
    14:02" (the feed's words, ``activity/when.py``); empty for no time."""
    return feed_when(at, now, tr=tr) if at else ""


def full_when(at: str | None, tr: Language = ENGLISH) -> str:
    """The full local time, for the tooltip ("Tue 1 Jan 2030, 10:00:05")."""
    return feed_full_when(at, tr=tr)


# ---------------------------------------------------------------- recipients


class RecipientColumn(IntEnum):
    """The recipients table's columns."""

    WHO = 0
    STATUS = 1
    OPENS = 2
    CLICKS = 3
    REPLIES = 4


RECIPIENT_HEADERS = (mark("Recipient"), mark("Status"), mark("Opens"), mark("Clicks"),
                     mark("Replies"))
FIELD_NOTES = {"cc": " (Cc)", "bcc": " (Bcc)"}
SOMEONE_NOTE = mark(
    "Several recipients shared one tracking image, or data privacy keeps this person "
    "unnamed: MailBeacon cannot say who it was."
)


def who_text(person: RecipientActivity, tr: Language = ENGLISH) -> str:
    """``Alicja Nowak <alicja@client.example>``; "Someone" for anonymous events."""
    if not person.email:
        return tr.t("Someone (cannot be told apart)")
    name = f"{person.name} <{person.email}>" if person.name else person.email
    return name + FIELD_NOTES.get(person.field, "")


def status_text(person: RecipientActivity, now: datetime, tr: Language = ENGLISH) -> str:
    """The one thing the rep wants to know about this recipient."""
    if person.failed:
        return tr.t(NOT_DELIVERED)
    if person.last_reply:
        return tr.t("Replied {when}", when=relative_when(person.last_reply, now, tr))
    if person.last_click:
        return tr.t("Clicked {when}", when=relative_when(person.last_click, now, tr))
    if person.last_open:
        return tr.t("Opened {when}", when=relative_when(person.last_open, now, tr))
    return tr.t(NOT_OPENED)


def count_text(count: int, last: str | None, now: datetime, tr: Language = ENGLISH) -> str:
    """``3 · 5 min ago`` (the count and the last one); an em dash for none."""
    if not count:
        return "—"
    return f"{tr.number(count)} · {relative_when(last, now, tr)}"


def _latest(person: RecipientActivity) -> str | None:
    times = [t for t in (person.last_open, person.last_click, person.last_reply) if t]
    return max(times) if times else None


class RecipientsModel(RowTableModel[RecipientActivity]):
    """Each recipient with their opens, clicks and replies (human ones only)."""

    def __init__(
        self, clock: Clock = _utc_now, parent: QObject | None = None, tr: Language = ENGLISH
    ) -> None:
        super().__init__(tuple(tr.t(h) for h in RECIPIENT_HEADERS), parent)
        self._clock = clock
        self._tr = tr

    def cell_data(self, row: RecipientActivity, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, column)
        if role == SORT_ROLE:
            return (row.opens, row.clicks, row.replies)[column - 2] if column >= 2 else None
        return None

    def _text(self, row: RecipientActivity, column: int) -> str | None:
        now, tr = self._clock(), self._tr
        match column:
            case RecipientColumn.WHO:
                return who_text(row, tr)
            case RecipientColumn.STATUS:
                return status_text(row, now, tr)
            case RecipientColumn.OPENS:
                return count_text(row.opens, row.last_open, now, tr)
            case RecipientColumn.CLICKS:
                return count_text(row.clicks, row.last_click, now, tr)
            case RecipientColumn.REPLIES:
                return count_text(row.replies, row.last_reply, now, tr)
        return None

    def _tooltip(self, row: RecipientActivity, column: int) -> str | None:
        if column == RecipientColumn.WHO:
            return self._tr.t(SOMEONE_NOTE) if not row.email else row.email
        last: str | None = {
            int(RecipientColumn.STATUS): _latest(row),
            RecipientColumn.OPENS: row.last_open,
            RecipientColumn.CLICKS: row.last_click,
            RecipientColumn.REPLIES: row.last_reply,
        }.get(column)
        return full_when(last, self._tr) if last else None


# ---------------------------------------------------------------- timeline


class TimelineColumn(IntEnum):
    """The timeline's columns."""

    WHEN = 0
    WHAT = 1
    DETAILS = 2


TIMELINE_HEADERS = (mark("When"), mark("What happened"), mark("Details"))


def actor_text(row: ActivityRow, tr: Language = ENGLISH) -> str:
    """Who did it: the contact's name or address, else "Someone"."""
    event = row.event
    if event.contact and not event.anonymous:
        return row.contact_name or event.contact
    return someone(tr)


def what_text(row: ActivityRow, tr: Language = ENGLISH) -> str:
    """A sentence: "Alicja Nowak opened it", "Bob replied", "Could not be delivered"
    (in Polish a noun instead of a verb, so no grammatical gender is guessed)."""
    event = row.event
    if event.type == EventType.DELIVERY_FAILED:
        recipients = event.details.get("recipients")
        named = ", ".join(str(r) for r in recipients) if isinstance(recipients, list) else ""
        if named:
            return tr.t("Could not be delivered to {recipients}", recipients=named)
        return tr.t(NOT_DELIVERED)
    who = actor_text(row, tr)
    if event.type == EventType.CLICK:
        return tr.t("{name} clicked {link}", name=who, link=link_label(event.url, tr))
    if event.type == EventType.REPLY:
        return tr.t("{name} replied", name=who)
    if event.type == EventType.OPEN:
        return tr.t("{name} opened it", name=who)
    return f"{who}: {event.type}"


def details_text(row: ActivityRow, tr: Language = ENGLISH) -> str:
    """With what, and the notes: "Chrome on Windows · possibly forwarded"; for what
    no person made, what it was and why MailBeacon thinks so."""
    event = row.event
    parts: list[str] = []
    if event.type == EventType.DELIVERY_FAILED:
        return event.reason
    if event.verdict != Verdict.HUMAN:
        verdict = (tr.t(VERDICT_WORDS[event.verdict]) if event.verdict in VERDICT_WORDS
                   else event.verdict.capitalize())
        reason = say_reason(event.reason, tr)
        said = tr.t("{verdict}: {reason}", verdict=verdict, reason=reason) if reason else verdict
        parts.append(said)
    if event.type in (EventType.OPEN, EventType.CLICK) and event.user_agent:
        parts.append(device_label(describe(event.user_agent), tr))
    via = event.details.get("via")
    if via:
        parts.append(tr.t("via {client}", client=via))
    if event.inferred:
        parts.append(tr.t("counted from the click") if event.type == EventType.OPEN
                     else tr.t("inferred"))
    if event.possibly_forwarded:
        parts.append(tr.t("possibly forwarded"))
    return " · ".join(p for p in parts if p)


class EmailTimelineModel(RowTableModel[ActivityRow]):
    """The email's events, newest first; rows no person made greyed."""

    def __init__(
        self, clock: Clock = _utc_now, parent: QObject | None = None, tr: Language = ENGLISH
    ) -> None:
        super().__init__(tuple(tr.t(h) for h in TIMELINE_HEADERS), parent)
        self._clock = clock
        self._tr = tr
        self._grey = greyed_brush()

    def cell_data(self, row: ActivityRow, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == TimelineColumn.WHEN:
                return full_when(row.event.at, self._tr)
            # The whole address of a clicked link (the cell shows host and path).
            return row.event.url if column == TimelineColumn.WHAT else None
        if role == SORT_ROLE and column == TimelineColumn.WHEN:
            return row.event.at
        if role == Qt.ItemDataRole.ForegroundRole and not _first_class(row):
            return self._grey
        return None

    def _text(self, row: ActivityRow, column: int) -> str | None:
        if column == TimelineColumn.WHEN:
            return relative_when(row.event.at, self._clock(), self._tr)
        if column == TimelineColumn.WHAT:
            return what_text(row, self._tr)
        return details_text(row, self._tr) if column == TimelineColumn.DETAILS else None


def _first_class(row: ActivityRow) -> bool:
    """A person's event, or a delivery failure (no hit decided it): never greyed."""
    return row.event.verdict == Verdict.HUMAN or row.event.type == EventType.DELIVERY_FAILED
