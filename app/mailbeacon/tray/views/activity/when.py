"""When something happened, the way a rep says it: "5 min ago", "yesterday 14:02".

The feed, a contact's timeline, the contacts table and the report tables show
times relative to now, in local time; the full local date and time is on hover
(``full_when``). Tables still sort by the stored time, never by this text. Past a week the date is
shown (with the year only when it is not this year), since "23 days ago" makes
the rep count. Stored times are UTC ISO 8601; one that does not parse is shown
as stored.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

JUST_NOW_SECONDS = 60
WEEK_DAYS = 7
CLOCK_MS = 60_000
"""How often a view showing relative times redraws them ("5 min ago" moves on)."""


def utc_now() -> datetime:
    """The current moment (the default clock of the views)."""
    return datetime.now(UTC)


def _local(at: str, tz: tzinfo | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(at)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tz)


def relative_when(at: str | None, now: datetime, tz: tzinfo | None = None) -> str:
    """``just now``, ``5 min ago``, ``today 09:12``, ``yesterday 14:02``, ``Mon 14:02``,
    ``12 Jun 14:02``, ``12 Jun 2024``; an em dash for no time."""
    moment = _local(at, tz) if at else None
    if moment is None:
        return at or "—"
    here = now.astimezone(tz)
    return _relative(moment, here, (here - moment).total_seconds())


def _relative(moment: datetime, here: datetime, seconds: float) -> str:
    clock = f"{moment:%H:%M}"
    days = (here.date() - moment.date()).days
    if -JUST_NOW_SECONDS < seconds < JUST_NOW_SECONDS:
        text = "just now"  # a few seconds of clock difference read as now too
    elif 0 < seconds < 3600:
        text = f"{int(seconds // 60)} min ago"
    elif days in (0, 1):
        text = f"{('today', 'yesterday')[days]} {clock}"
    elif 1 < days < WEEK_DAYS:
        text = f"{moment:%a} {clock}"
    elif moment.year == here.year:
        text = f"{moment.day} {moment:%b} {clock}"
    else:
        text = f"{moment.day} {moment:%b %Y}"
    return text


def full_when(at: str | None, tz: tzinfo | None = None) -> str:
    """The full local date and time, for the hover text: ``Thu 12 Jun 2025, 14:02:07``."""
    if not at:
        return ""
    moment = _local(at, tz)
    if moment is None:
        return at
    return f"{moment:%a} {moment.day} {moment:%b %Y, %H:%M:%S}"
