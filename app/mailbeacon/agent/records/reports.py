"""Reports: what the rep's emails got, per email, per contact and per day.

Only human events count (rule 5). "Someone" events (anonymous: a shared pixel,
privacy, rule 8 and 9) count in an email's numbers and in the totals, shown
apart as anonymous, and are left out of every per-contact number. Inferred
opens (rule 6) count as opens, so no report shows clicks without opens.

``read_report_data`` reads what a period needs from the records store (run it
off the UI thread); ``build_report`` computes everything from that, with no I/O;
``*_table`` turn a report into the rows the reports window shows and exports;
``write_csv`` writes such rows.

The store has no "list sent emails" query: the emails of a period are collected
from the contacts' records (one query per contact). That is fine for a rep's
few thousand contacts; a dedicated store query would make it one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Protocol

from mailbeacon.agent.records.model import (
    ActivityFilter,
    ActivityRow,
    Contact,
    ContactRecord,
    EmailRecord,
    SentEntry,
    normalize_at,
)
from mailbeacon.core.events import ENGAGEMENT_TYPES, HIT_TYPES, NOT_HUMAN, EventType, Verdict
from mailbeacon.core.language import ENGLISH, Language, mark

COUNTED_TYPES = ENGAGEMENT_TYPES
MAX_DAYS = 3700  # the chart's longest span (about ten years)
SOMEONE = "Someone"


class ReportSource(Protocol):
    """What reports read; ``RecordsStore`` is one."""

    def contacts(self, limit: int | None = ..., offset: int = ...) -> list[Contact]:
        """Every contact."""
        ...

    def contact_record(
        self, email: str, include_non_human: bool = ...
    ) -> ContactRecord | None:
        """A contact's timeline."""
        ...

    def activity(
        self, limit: int | None = ..., offset: int = ..., filters: ActivityFilter | None = ...
    ) -> list[ActivityRow]:
        """Events with their emails."""
        ...

    def count_events(self, filters: ActivityFilter | None = ...) -> int:
        """How many events match."""
        ...


@dataclass(frozen=True, slots=True)
class Period:
    """A span of time, as stored UTC strings; None: open-ended."""

    since: str | None = None
    until: str | None = None

    def contains(self, at: str) -> bool:
        """Whether the stored time ``at`` falls in the period."""
        return (self.since is None or at >= self.since) and (self.until is None or at < self.until)


def last_days(days: int | None, now: datetime, tz: tzinfo | None = None) -> Period:
    """The last ``days`` local calendar days up to ``now`` (today included); None: all time."""
    if days is None:
        return Period()
    local_now = now.astimezone(tz)
    start_day = local_now.date() - timedelta(days=max(1, days) - 1)
    start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=local_now.tzinfo)
    return Period(since=normalize_at(start))


@dataclass(frozen=True, slots=True)
class ReportData:
    """What a report is computed from."""

    emails: tuple[EmailRecord, ...]  # sent in the period
    events: tuple[ActivityRow, ...]  # human opens, clicks and replies in the period
    contacts: dict[str, Contact] = field(default_factory=dict)
    filtered: int = 0  # opens and clicks in the period that no human made


def read_report_data(source: ReportSource, period: Period) -> ReportData:
    """Read the emails, counted events and contacts of ``period`` (blocking)."""
    contacts = {c.email: c for c in source.contacts()}
    emails: dict[int, EmailRecord] = {}
    for address in contacts:
        record = source.contact_record(address)
        if record is None:
            continue
        for entry in record.timeline:
            if isinstance(entry, SentEntry) and period.contains(entry.email.sent_at):
                emails.setdefault(entry.email.id, entry.email)
    since, until = period.since, period.until
    counted = ActivityFilter(
        types=COUNTED_TYPES, verdicts=(Verdict.HUMAN,), since=since, until=until
    )
    events = source.activity(None, 0, counted)
    filtered = source.count_events(
        ActivityFilter(types=HIT_TYPES, verdicts=NOT_HUMAN, since=since, until=until)
    )
    ordered = sorted(emails.values(), key=lambda e: (e.sent_at, e.id), reverse=True)
    return ReportData(tuple(ordered), tuple(events), contacts, filtered)


# ---------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class EmailStats:
    """One sent email's numbers (anonymous events included, and also counted apart)."""

    email_id: int
    subject: str
    sent_at: str
    recipients: int
    tracked: bool
    untracked_reason: str
    opens: int
    anonymous_opens: int
    opened_by: int  # named recipients with at least one open
    clicks: int
    anonymous_clicks: int
    replies: int
    first_open_at: str | None
    seconds_to_first_open: float | None


@dataclass(frozen=True, slots=True)
class ContactStats:
    """One contact's numbers; anonymous events are never part of them."""

    email: str
    name: str
    company: str
    emails: int  # sent to them in the period
    opens: int
    clicks: int
    replies: int
    last_engagement: str | None  # their latest counted event in the period


@dataclass(frozen=True, slots=True)
class DayStats:
    """Human opens and clicks on one local calendar day, named and anonymous apart."""

    day: date
    opens: int
    anonymous_opens: int
    clicks: int
    anonymous_clicks: int


@dataclass(frozen=True, slots=True)
class Totals:
    """The period's totals; ``opens`` and ``clicks`` include the anonymous ones."""

    emails: int
    untracked: int
    recipients: int
    opens: int
    anonymous_opens: int
    clicks: int
    anonymous_clicks: int
    replies: int
    filtered: int


@dataclass(frozen=True, slots=True)
class Report:
    """Everything the reports window shows."""

    period: Period
    emails: tuple[EmailStats, ...]
    contacts: tuple[ContactStats, ...]
    days: tuple[DayStats, ...]
    totals: Totals


@dataclass(slots=True)
class _Counter:
    opens: int = 0
    anonymous_opens: int = 0
    clicks: int = 0
    anonymous_clicks: int = 0
    replies: int = 0
    openers: set[str] = field(default_factory=set)
    first_open: str | None = None
    last: str | None = None

    def add(self, row: ActivityRow) -> None:
        event = row.event
        anonymous = event.anonymous or not event.contact
        if event.type == EventType.OPEN:
            self.opens += 1
            self.anonymous_opens += anonymous
            if not anonymous and event.contact:
                self.openers.add(event.contact)
            if self.first_open is None or event.at < self.first_open:
                self.first_open = event.at
        elif event.type == EventType.CLICK:
            self.clicks += 1
            self.anonymous_clicks += anonymous
        elif event.type == EventType.REPLY:
            self.replies += 1
        if self.last is None or event.at > self.last:
            self.last = event.at


def build_report(data: ReportData, period: Period, today: date, tz: tzinfo | None = None) -> Report:
    """The report of ``data`` (no I/O); days run to ``today`` (local, per ``tz``)."""
    per_email: dict[int, _Counter] = {}
    per_contact: dict[str, _Counter] = {}
    per_day: dict[date, _Counter] = {}
    overall = _Counter()
    for row in data.events:
        event = row.event
        if event.verdict != Verdict.HUMAN or event.type not in COUNTED_TYPES:
            continue  # a caller's data may hold more than read_report_data reads
        overall.add(row)
        if event.email_id is not None:
            per_email.setdefault(event.email_id, _Counter()).add(row)
        if event.contact and not event.anonymous:
            per_contact.setdefault(event.contact, _Counter()).add(row)
        if event.type in HIT_TYPES:
            per_day.setdefault(local_day(event.at, tz), _Counter()).add(row)

    emails = tuple(
        _email_stats(email, per_email.get(email.id, _Counter())) for email in data.emails
    )
    sent_to: dict[str, int] = {}
    for email in data.emails:
        for recipient in {r.email for r in email.recipients}:
            sent_to[recipient] = sent_to.get(recipient, 0) + 1
    contacts = tuple(
        sorted(
            (
                _contact_stats(address, data.contacts.get(address), sent_to.get(address, 0),
                               per_contact.get(address, _Counter()))
                for address in set(sent_to) | set(per_contact)
            ),
            key=lambda c: (-(c.opens + c.clicks + c.replies), -c.emails, c.email),
        )
    )
    totals = Totals(
        emails=len(emails),
        untracked=sum(1 for e in emails if not e.tracked),
        recipients=sum(e.recipients for e in emails),
        opens=overall.opens,
        anonymous_opens=overall.anonymous_opens,
        clicks=overall.clicks,
        anonymous_clicks=overall.anonymous_clicks,
        replies=overall.replies,
        filtered=data.filtered,
    )
    return Report(period, emails, contacts, _days(per_day, period, today, tz), totals)


def local_day(at: str, tz: tzinfo | None = None) -> date:
    """The local calendar day of a stored UTC time."""
    return datetime.fromisoformat(at).astimezone(tz).date()


def _email_stats(email: EmailRecord, counter: _Counter) -> EmailStats:
    seconds = None
    if counter.first_open is not None:
        delta = datetime.fromisoformat(counter.first_open) - datetime.fromisoformat(email.sent_at)
        seconds = max(0.0, delta.total_seconds())
    return EmailStats(
        email_id=email.id,
        subject=email.subject,
        sent_at=email.sent_at,
        recipients=len({r.email for r in email.recipients}),
        tracked=email.tracked,
        untracked_reason=email.untracked_reason,
        opens=counter.opens,
        anonymous_opens=counter.anonymous_opens,
        opened_by=len(counter.openers),
        clicks=counter.clicks,
        anonymous_clicks=counter.anonymous_clicks,
        replies=counter.replies,
        first_open_at=counter.first_open,
        seconds_to_first_open=seconds,
    )


def _contact_stats(
    address: str, contact: Contact | None, emails: int, counter: _Counter
) -> ContactStats:
    return ContactStats(
        email=address,
        name=contact.name if contact else "",
        company=contact.company if contact else "",
        emails=emails,
        opens=counter.opens,
        clicks=counter.clicks,
        replies=counter.replies,
        last_engagement=counter.last,
    )


def _days(
    per_day: dict[date, _Counter], period: Period, today: date, tz: tzinfo | None
) -> tuple[DayStats, ...]:
    if period.since is not None:
        first = local_day(period.since, tz)
    elif per_day:
        first = min(per_day)
    else:
        return ()
    last = local_day(period.until, tz) - timedelta(days=1) if period.until else today
    last = max([last, *per_day])
    first = max(first, last - timedelta(days=MAX_DAYS - 1))
    out: list[DayStats] = []
    day = first
    while day <= last:  # bounded by MAX_DAYS
        c = per_day.get(day, _Counter())
        out.append(DayStats(day, c.opens - c.anonymous_opens, c.anonymous_opens,
                            c.clicks - c.anonymous_clicks, c.anonymous_clicks))
        day += timedelta(days=1)
    return tuple(out)


# ---------------------------------------------------------------- tables and CSV

SortKey = str | int | float


@dataclass(frozen=True, slots=True)
class Cell:
    """What a table cell shows (plain text) and how it sorts."""

    text: str
    sort: SortKey


@dataclass(frozen=True, slots=True)
class Table:
    """Headers and rows of cells."""

    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


NO_OPEN = float("inf")  # sorts unopened emails after every opened one


def format_duration(seconds: float | None, tr: Language = ENGLISH) -> str:
    """``45 s``, ``12 min``, ``3 h 05 min``, ``2 d 4 h``; an em dash for None."""
    if seconds is None:
        return "—"
    whole = int(seconds)
    if whole < 60:
        return tr.t("{seconds} s", seconds=whole)
    minutes, _ = divmod(whole, 60)
    if minutes < 60:
        return tr.t("{minutes} min", minutes=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return tr.t("{hours} h {minutes} min", hours=hours, minutes=str(minutes).zfill(2))
    days, hours = divmod(hours, 24)
    return tr.t("{days} d {hours} h", days=days, hours=hours)


def format_when(at: str | None, tz: tzinfo | None = None) -> str:
    """A stored time as local ``YYYY-MM-DD HH:MM``; an em dash for None."""
    if not at:
        return "—"
    try:
        return datetime.fromisoformat(at).astimezone(tz).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return at


def _count(total: int, anonymous: int, tr: Language = ENGLISH) -> Cell:
    text = (tr.t("{total} ({anonymous} by Someone)", total=total, anonymous=anonymous)
            if anonymous else str(total))
    return Cell(text, total)


# The tables' column titles (English for the command line and CSV; the tray translates).
EMAIL_HEADERS = (mark("Sent"), mark("Subject"), mark("Recipients"), mark("Opens"),
                 mark("Opened by"), mark("Clicks"), mark("Replies"), mark("First open after"))
CONTACT_HEADERS = (mark("Contact"), mark("Email"), mark("Company"), mark("Emails"),
                   mark("Opens"), mark("Clicks"), mark("Replies"), mark("Last engagement"))
DAY_HEADERS = (mark("Day"), mark("Opens"), mark("Opens by Someone"), mark("Clicks"),
               mark("Clicks by Someone"))


def emails_table(report: Report, tz: tzinfo | None = None, tr: Language = ENGLISH) -> Table:
    """One row per email sent in the period, newest first."""
    headers = tuple(tr.t(h) for h in EMAIL_HEADERS)
    rows = []
    for e in report.emails:
        if e.tracked:
            first = Cell(format_duration(e.seconds_to_first_open, tr),
                         NO_OPEN if e.seconds_to_first_open is None else e.seconds_to_first_open)
        elif e.untracked_reason:
            first = Cell(tr.t("not tracked: {reason}", reason=e.untracked_reason), NO_OPEN)
        else:
            first = Cell(tr.t("not tracked"), NO_OPEN)
        rows.append((
            Cell(format_when(e.sent_at, tz), e.sent_at),
            Cell(e.subject, e.subject.casefold()),
            Cell(str(e.recipients), e.recipients),
            _count(e.opens, e.anonymous_opens, tr),
            Cell(tr.t("{opened} of {count}", opened=e.opened_by, count=e.recipients),
                 e.opened_by),
            _count(e.clicks, e.anonymous_clicks, tr),
            Cell(str(e.replies), e.replies),
            first,
        ))
    return Table(headers, tuple(rows))


def contacts_table(report: Report, tz: tzinfo | None = None, tr: Language = ENGLISH) -> Table:
    """One row per named contact emailed or engaged in the period ("Someone" left out)."""
    headers = tuple(tr.t(h) for h in CONTACT_HEADERS)
    rows = tuple(
        (
            Cell(c.name or c.email, (c.name or c.email).casefold()),
            Cell(c.email, c.email),
            Cell(c.company, c.company.casefold()),
            Cell(str(c.emails), c.emails),
            Cell(str(c.opens), c.opens),
            Cell(str(c.clicks), c.clicks),
            Cell(str(c.replies), c.replies),
            Cell(format_when(c.last_engagement, tz), c.last_engagement or ""),
        )
        for c in report.contacts
    )
    return Table(headers, rows)


def days_table(report: Report, tr: Language = ENGLISH) -> Table:
    """One row per day: human opens and clicks, named and by "Someone" apart."""
    headers = tuple(tr.t(h) for h in DAY_HEADERS)
    rows = tuple(
        (
            Cell(d.day.isoformat(), d.day.isoformat()),
            Cell(str(d.opens), d.opens),
            Cell(str(d.anonymous_opens), d.anonymous_opens),
            Cell(str(d.clicks), d.clicks),
            Cell(str(d.anonymous_clicks), d.anonymous_clicks),
        )
        for d in report.days
    )
    return Table(headers, rows)


def totals_text(totals: Totals, tr: Language = ENGLISH) -> str:
    """The totals in one plain-text line (plural forms from ``tr``)."""

    def apart(text: str, anonymous: int) -> str:
        return tr.t("{counted} ({anonymous} by Someone)", counted=text,
                    anonymous=anonymous) if anonymous else text

    sent = tr.t(
        "{emails} to {recipients}",
        emails=tr.n("{count} email", "{count} emails", totals.emails),
        recipients=tr.n("{count} recipient", "{count} recipients", totals.recipients),
    )
    if totals.untracked:
        sent = tr.t("{sent} ({count} not tracked)", sent=sent, count=totals.untracked)
    parts = [
        sent,
        apart(tr.n("{count} open", "{count} opens", totals.opens), totals.anonymous_opens),
        apart(tr.n("{count} click", "{count} clicks", totals.clicks), totals.anonymous_clicks),
        tr.n("{count} reply", "{count} replies", totals.replies),
    ]
    if totals.filtered:
        parts.append(tr.t("{count} not counted (scanners, proxies, your own)",
                          count=totals.filtered))
    return " · ".join(parts)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a ``'``."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_text(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """CSV (RFC 4180, CRLF) of the headers and rows, formula-like cells defused."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_cell(h) for h in headers])
    for row in rows:
        writer.writerow([csv_cell(cell) for cell in row])
    return out.getvalue()


def write_csv(path: Path, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Write the rows as a UTF-8 CSV file (with a byte-order mark for spreadsheets)."""
    path.write_text(csv_text(headers, rows), encoding="utf-8-sig", newline="")


def today_in(tz: tzinfo | None = None, now: Callable[[], datetime] | None = None) -> date:
    """Today's local date."""
    moment = now() if now is not None else datetime.now(UTC)
    return moment.astimezone(tz).date()
