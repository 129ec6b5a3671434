"""One sent email as the rep looks at it: who it went to, who opened, clicked or
replied, what could not be delivered, its events and its logged copy.

Read-only and built from the store's public queries (``email``, ``activity``,
``contact``, ``logged_copy``), so it needs no SQL of its own; the tray runs it on a
worker thread. Counts are of human events only (rule 5): a scanner's open never
makes a recipient "opened". Anonymous events (a shared pixel, or privacy without a
lawful basis: rules 8, 9) are counted apart, as "Someone", and never credited to a
recipient.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from mailbeacon.agent.records.model import (
    ActivityFilter,
    ActivityRow,
    Contact,
    EmailRecord,
    StoredCopy,
    normalize_email,
)
from mailbeacon.core.events import EventType, Verdict

__all__ = [
    "EmailView",
    "EmailViewSource",
    "RecipientActivity",
    "email_view",
    "email_view_by_message_id",
]


class EmailViewSource(Protocol):
    """The store queries an email's view reads; ``RecordsStore`` is one."""

    def email(self, email_id: int) -> EmailRecord | None:
        """A sent email by id."""
        ...

    def emails_for_message_id(self, message_id: str) -> list[EmailRecord]:
        """Sent emails with this Message-ID, oldest first."""
        ...

    def activity(
        self, limit: int | None = ..., offset: int = ..., filters: ActivityFilter | None = ...
    ) -> list[ActivityRow]:
        """Events with their emails, newest first."""
        ...

    def contact(self, email: str) -> Contact | None:
        """A contact by address."""
        ...

    def logged_copy(self, email_id: int) -> StoredCopy | None:
        """The logged copy of a sent email."""
        ...


@dataclass(frozen=True, slots=True)
class RecipientActivity:
    """What one recipient (or "Someone") did with the email; human events only.

    ``field`` is ``to``, ``cc`` or ``bcc`` (empty for "Someone"); the ``last_*``
    times are stored UTC times, None for never; ``failed`` when a delivery failure
    named this address.
    """

    email: str
    name: str
    field: str
    opens: int = 0
    clicks: int = 0
    replies: int = 0
    last_open: str | None = None
    last_click: str | None = None
    last_reply: str | None = None
    failed: bool = False

    @property
    def engaged(self) -> bool:
        """Opened, clicked or replied (a click or a reply shows the email was read)."""
        return bool(self.opens or self.clicks or self.replies)

    @property
    def display(self) -> str:
        """The name the rep reads: the contact's name, else the address."""
        return self.name or self.email


@dataclass(frozen=True, slots=True)
class EmailView:
    """A sent email, what each recipient did with it, its events and its copy.

    ``events`` holds every event of the email, newest first, whatever its verdict
    (the window shows those no person made behind "Details"). ``someone`` counts
    the anonymous human events (None when there are none). ``failed`` lists the
    addresses delivery failures named, in the order first seen.
    """

    email: EmailRecord
    recipients: tuple[RecipientActivity, ...]
    someone: RecipientActivity | None
    events: tuple[ActivityRow, ...]
    copy: StoredCopy | None
    failed: tuple[str, ...]

    @property
    def not_engaged(self) -> tuple[str, ...]:
        """Addresses that have not opened, clicked or replied, and were delivered to."""
        return tuple(r.email for r in self.recipients if not r.engaged and not r.failed)

    @property
    def human_events(self) -> tuple[ActivityRow, ...]:
        """The events a person made (and delivery failures, which no hit decided)."""
        return tuple(row for row in self.events if _first_class(row))

    @property
    def other_events(self) -> tuple[ActivityRow, ...]:
        """Opens and clicks no person made: scanners, image proxies, the rep's own."""
        return tuple(row for row in self.events if not _first_class(row))


def _first_class(row: ActivityRow) -> bool:
    event = row.event
    return event.verdict == Verdict.HUMAN or event.type == EventType.DELIVERY_FAILED


def email_view(source: EmailViewSource, email_id: int) -> EmailView | None:
    """The view of the sent email ``email_id``, or None if the records do not hold it.

    Blocking (several small reads): call it off the UI thread.
    """
    email = source.email(email_id)
    if email is None:
        return None
    rows = tuple(source.activity(limit=None, filters=ActivityFilter(email_id=email_id)))
    failed = _failed_addresses(rows)
    names = {r.email: _name(source, r.email) for r in email.recipients}
    per_address: dict[str, _Tally] = {r.email: _Tally() for r in email.recipients}
    someone = _Tally()
    extra: list[str] = []  # events of a contact not on the email (should not happen)
    for row in rows:
        event = row.event
        if event.verdict != Verdict.HUMAN or event.type == EventType.DELIVERY_FAILED:
            continue
        if event.anonymous or not event.contact:
            someone.add(event.type, event.at)
            continue
        tally = per_address.get(event.contact)
        if tally is None:
            tally = per_address[event.contact] = _Tally()
            extra.append(event.contact)
            names[event.contact] = row.contact_name or ""
        tally.add(event.type, event.at)
    recipients = [
        per_address[r.email].activity(r.email, names[r.email], r.field, r.email in failed)
        for r in email.recipients
    ]
    recipients += [
        per_address[a].activity(a, names[a], "", a in failed) for a in extra
    ]
    return EmailView(
        email=email,
        recipients=tuple(recipients),
        someone=someone.activity("", "", "", False) if someone.any else None,
        events=rows,
        copy=source.logged_copy(email_id),
        failed=tuple(failed),
    )


def email_view_by_message_id(source: EmailViewSource, message_id: str) -> EmailView | None:
    """The view of the newest sent email with this Message-ID, or None."""
    found = source.emails_for_message_id(message_id)
    return email_view(source, found[-1].id) if found else None


def _name(source: EmailViewSource, address: str) -> str:
    contact = source.contact(address)
    return contact.name if contact is not None else ""


def _failed_addresses(rows: Iterable[ActivityRow]) -> dict[str, None]:
    """Addresses named by delivery failures (an ordered set)."""
    failed: dict[str, None] = {}
    for row in rows:
        event = row.event
        if event.type != EventType.DELIVERY_FAILED:
            continue
        named = event.details.get("recipients")
        addresses = [str(a) for a in named] if isinstance(named, list) else []
        if not addresses and event.contact:
            addresses = [event.contact]
        for address in addresses:
            try:
                failed[normalize_email(address)] = None
            except ValueError:  # a server's odd answer is shown, not trusted as a key
                continue
    return failed


class _Tally:
    """Counts and latest times of one recipient's human events."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.last: dict[str, str] = {}

    @property
    def any(self) -> bool:
        return bool(self.counts)

    def add(self, kind: str, at: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        # Stored times are fixed-width UTC text: text order is time order.
        if at > self.last.get(kind, ""):
            self.last[kind] = at

    def activity(self, address: str, name: str, field: str, failed: bool) -> RecipientActivity:
        return RecipientActivity(
            email=address,
            name=name,
            field=field,
            opens=self.counts.get(EventType.OPEN, 0),
            clicks=self.counts.get(EventType.CLICK, 0),
            replies=self.counts.get(EventType.REPLY, 0),
            last_open=self.last.get(EventType.OPEN),
            last_click=self.last.get(EventType.CLICK),
            last_reply=self.last.get(EventType.REPLY),
            failed=failed,
        )
