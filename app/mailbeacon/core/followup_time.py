"""Time rules of follow-up: when scheduled mail, reminders and sequence steps fall due.

Pure functions over aware datetimes; the agent's follow-up loop (``agent/followup``)
calls them with its injected clock and the rep's time zone. Decisions:

* A send time must name its zone (RFC 5322 date or ISO 8601 with an offset or
  ``Z``): a bare "10:00" would mean another moment after the rep's time zone
  changes. Everything is stored as a UTC instant; zones matter only when a time
  is computed (a window's hours, "tomorrow morning"), so a DST change or a moved
  laptop never sends anything twice or skips it.
* Delays are ``<n>s|m|h|d``. ``d`` counts business days when the send window
  names days (only those days count), else calendar days; a day keeps the local
  time of day in the window's zone, so "2d" across a DST change is still 09:00.
* A send window is days, an ``HH:MM-HH:MM`` span and a zone; ``next_open`` is the
  first instant at or after a time that lies inside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailbeacon.core.language import PHRASES

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DELAY = re.compile(r"^\s*(\d{1,6})\s*([smhd])\s*$", re.IGNORECASE)
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
# How far ahead a window is searched before it is declared empty (a year of days).
_SEARCH_DAYS = 370


class TimeRuleError(ValueError):
    """A time, delay or window that cannot be used; the message says what to write (a
    phrase: the tray says it in the rep's language, ``mailbeacon.core.language.said``)."""


def parse_send_at(text: str) -> datetime:
    """The UTC instant of an ``X-MailBeacon-Send-At`` value (RFC 5322 or ISO 8601 with
    a zone); raises TimeRuleError naming the accepted forms."""
    value = " ".join(text.split())
    if not value:
        raise TimeRuleError(PHRASES.t("X-MailBeacon-Send-At is empty"))
    parsed = _rfc5322(value) or _iso(value)
    if parsed is None:
        raise TimeRuleError(
            PHRASES.t(
                "X-MailBeacon-Send-At {value} is not a date with a time zone; write e.g. "
                "'Tue, 08 Dec 2026 09:00:00 +0100' or '2026-12-08T09:00:00+01:00'",
                value=repr(value[:60]),
            )
        )
    return parsed.astimezone(UTC)


def _rfc5322(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    # "-0000" means "zone unknown" (RFC 5322 3.3): parsedate gives a naive time.
    return parsed if parsed.tzinfo is not None else None


def _iso(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


@dataclass(frozen=True, slots=True)
class Delay:
    """``amount`` of ``unit`` (s, m, h, d)."""

    amount: int
    unit: str

    @property
    def seconds(self) -> int:
        """The delay in seconds, a day counting 24 hours (reminders, no window)."""
        return self.amount * UNITS[self.unit]

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


def parse_delay(text: str, *, what: str = "delay") -> Delay:
    """``"3d"`` → Delay(3, "d"); a bare number means days. Raises TimeRuleError."""
    value = text.strip()
    if value.isdigit():
        value += "d"
    found = _DELAY.match(value)
    if found is None:
        raise TimeRuleError(
            PHRASES.t(
                "{what} {value} is not a number followed by s, m, h or d "
                "(e.g. '3d', '4h', '30s')",
                what=what,
                value=repr(text.strip()[:40]),
            )
        )
    return Delay(int(found.group(1)), found.group(2).lower())


def zone_named(name: str) -> ZoneInfo:
    """The IANA zone ``name``; raises TimeRuleError for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeRuleError(
            PHRASES.t("unknown time zone {name} (use e.g. 'Europe/Warsaw')", name=repr(name))
        ) from None


@dataclass(frozen=True, slots=True)
class Window:
    """When sequence steps may go out: weekdays (0 = Monday), a daily span, a zone.

    ``zone`` None means the rep's zone, passed in at each computation. The default
    window is any time.
    """

    days: frozenset[int] = field(default_factory=lambda: frozenset(range(7)))
    start: time = time(0, 0)
    end: time = time(0, 0)  # equal to start: the whole day
    zone: str | None = None
    daily_cap: int | None = None

    @property
    def names_days(self) -> bool:
        """Whether the window excludes some weekdays (then ``d`` counts business days)."""
        return len(self.days) < 7

    @property
    def whole_day(self) -> bool:
        """Whether any hour of an allowed day is in the window."""
        return self.start == self.end

    def tz(self, rep_zone: tzinfo) -> tzinfo:
        """The zone the window's days and hours are read in."""
        return zone_named(self.zone) if self.zone else rep_zone

    def contains(self, at: datetime, rep_zone: tzinfo) -> bool:
        """Whether ``at`` lies inside the window."""
        local = at.astimezone(self.tz(rep_zone))
        if local.weekday() not in self.days:
            return False
        if self.whole_day:
            return True
        clock = local.time().replace(tzinfo=None)
        return self.start <= clock < self.end

    def next_open(self, at: datetime, rep_zone: tzinfo) -> datetime:
        """The first instant at or after ``at`` inside the window (UTC)."""
        if self.contains(at, rep_zone):
            return at.astimezone(UTC)
        zone = self.tz(rep_zone)
        local = at.astimezone(zone)
        for offset in range(_SEARCH_DAYS):
            day = local.date() + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            opening = _local_instant(day, self.start, zone)
            if opening >= at:
                return opening.astimezone(UTC)
            if not self.whole_day and at < _local_instant(day, self.end, zone):
                return at.astimezone(UTC)
        raise TimeRuleError(PHRASES.t("the send window has no day in it"))

    def day_of(self, at: datetime, rep_zone: tzinfo) -> date:
        """The window's local day of ``at`` (the daily cap counts per such day)."""
        return at.astimezone(self.tz(rep_zone)).date()

    def next_day_open(self, at: datetime, rep_zone: tzinfo) -> datetime:
        """The window's first opening on a later local day than ``at`` (cap reached)."""
        zone = self.tz(rep_zone)
        tomorrow = at.astimezone(zone).date() + timedelta(days=1)
        return self.next_open(_local_instant(tomorrow, time(0, 0), zone), rep_zone)


def _local_instant(day: date, clock: time, zone: tzinfo) -> datetime:
    """``day`` at ``clock`` in ``zone``; a time skipped by DST moves forward past the gap."""
    naive = datetime.combine(day, clock)
    aware = naive.replace(tzinfo=zone)
    # A wall time in a spring-forward gap does not round-trip: take the later side.
    back = aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if back != naive:
        aware = naive.replace(tzinfo=zone, fold=1)
    return aware


def parse_window(
    days: list[str] | None, hours: str | None, zone: str | None, daily_cap: int | None
) -> Window:
    """A window from the sequence file's ``[window]`` fields; raises TimeRuleError."""
    chosen = frozenset(range(7))
    if days is not None:
        wrong = [d for d in days if str(d).lower()[:3] not in DAY_NAMES]
        if wrong or not days:
            raise TimeRuleError(
                PHRASES.t(
                    "window days must be among {days}: {wrong}",
                    days=", ".join(DAY_NAMES),
                    wrong=str(wrong),
                )
            )
        chosen = frozenset(DAY_NAMES.index(str(d).lower()[:3]) for d in days)
    start = end = time(0, 0)
    if hours:
        found = _HOURS.match(hours)
        if found is None:
            raise TimeRuleError(
                PHRASES.t("window hours {hours} are not 'HH:MM-HH:MM'", hours=repr(hours))
            )
        h1, m1, h2, m2 = (int(g) for g in found.groups())
        if not (h1 < 24 and h2 <= 24 and m1 < 60 and m2 < 60):
            raise TimeRuleError(
                PHRASES.t("window hours {hours} are not times of day", hours=repr(hours))
            )
        start, end = time(h1, m1), (time(0, 0) if h2 == 24 else time(h2, m2))
        if end != time(0, 0) and end <= start:
            raise TimeRuleError(
                PHRASES.t("window hours {hours} end before they start", hours=repr(hours))
            )
        if h2 == 24 and start == time(0, 0):
            end = start  # the whole day
        elif h2 == 24:
            end = time(23, 59, 59, 999999)
    if zone:
        zone_named(zone)
    if daily_cap is not None and daily_cap < 1:
        raise TimeRuleError("daily_cap must be at least 1")
    return Window(chosen, start, end, zone or None, daily_cap)


def add_delay(start: datetime, delay: Delay, window: Window, rep_zone: tzinfo) -> datetime:
    """``start`` plus ``delay`` (UTC), before the window is applied.

    Seconds, minutes and hours are elapsed time. Days keep the local time of day in
    the window's zone and count only the window's days when it names days (business
    days), so a Friday step with "1d" falls on Monday.
    """
    if delay.unit != "d":
        return (start + timedelta(seconds=delay.seconds)).astimezone(UTC)
    zone = window.tz(rep_zone)
    local = start.astimezone(zone)
    day = local.date()
    left = delay.amount
    while left > 0:
        day += timedelta(days=1)
        if not window.names_days or day.weekday() in window.days:
            left -= 1
    clock = local.time().replace(tzinfo=None)
    return _local_instant(day, clock, zone).astimezone(UTC)


def due_after(previous: datetime, delay: Delay, window: Window, rep_zone: tzinfo) -> datetime:
    """When a step with ``delay`` after ``previous`` may go: the delay, then the window."""
    return window.next_open(add_delay(previous, delay, window, rep_zone), rep_zone)


def tomorrow_morning(now: datetime, rep_zone: tzinfo, hour: int = 8) -> datetime:
    """Compose's "Tomorrow morning": 08:00 the next day in the rep's zone (UTC)."""
    day = now.astimezone(rep_zone).date() + timedelta(days=1)
    return _local_instant(day, time(hour, 0), rep_zone).astimezone(UTC)


def next_monday_nine(now: datetime, rep_zone: tzinfo) -> datetime:
    """Compose's "Monday 9:00": the next Monday at 09:00 in the rep's zone, after now."""
    local = now.astimezone(rep_zone)
    ahead = (7 - local.weekday()) % 7
    day = local.date() + timedelta(days=ahead)
    candidate = _local_instant(day, time(9, 0), rep_zone)
    if candidate <= now:
        candidate = _local_instant(day + timedelta(days=7), time(9, 0), rep_zone)
    return candidate.astimezone(UTC)
