"""When something happened, the way a rep says it: "5 min ago", "yesterday 14:02".

The feed, a contact's timeline, the contacts table and the report tables show
times relative to now, in local time and the rep's language (``Language.relative``,
``mailbeacon.core.language``); the full local date and time is on hover
(``full_when``). Tables still sort by the stored time, never by this text. Past a week the date is
shown (with the year only when it is not this year), since "23 days ago" makes
the rep count. Stored times are UTC ISO 8601; one that does not parse is shown
as stored.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from mailbeacon.core.language import ENGLISH, Language

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


def relative_when(
    at: str | None, now: datetime, tz: tzinfo | None = None, tr: Language = ENGLISH
) -> str:
    """``just now``, ``5 min ago``, ``today 09:12``, ``yesterday 14:02``, ``Mon 14:02``,
    ``12 Jun 14:02``, ``12 Jun 2024`` in ``tr``'s words and formats ("2 min temu",
    "wczoraj 14:05"); an em dash for no time."""
    moment = _local(at, tz) if at else None
    if moment is None:
        return at or "—"
    return _in(tr, tz).relative(moment, now)


def _in(tr: Language, tz: tzinfo | None) -> Language:
    return tr.in_zone(tz) if tz is not None else tr


def full_when(at: str | None, tz: tzinfo | None = None, tr: Language = ENGLISH) -> str:
    """The full local date and time, for the hover text: ``Thu 12 Jun 2025, 14:02:07``
    (``czw. 12 cze 2025, 14:02:07``)."""
    if not at:
        return ""
    moment = _local(at, tz)
    if moment is None:
        return at
    return _in(tr, tz).full(moment)
