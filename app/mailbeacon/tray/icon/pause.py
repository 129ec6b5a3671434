"""Pausing notifications for a while. The pause lives in the settings
(``notify.paused_until``), where the agent reads it; this keeps the tray's view."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo

HOUR = 3600.0


class PauseState:
    """Whether notifications are paused, and until when (a POSIX time)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        tz: tzinfo | None = None,
        morning_hour: int = 8,
        until: float | None = None,
        on_change: Callable[[float | None], None] | None = None,
    ) -> None:
        self._clock = clock
        self._tz = tz
        self._morning_hour = morning_hour
        self._until = until
        self._on_change = on_change

    def pause_for(self, seconds: float) -> float:
        """Pause from now for ``seconds``; returns the end time."""
        return self.pause_until(self._clock() + seconds)

    def pause_until_tomorrow(self) -> float:
        """Pause until tomorrow morning (``morning_hour`` local time); returns the end time."""
        tomorrow = (datetime.fromtimestamp(self._clock(), self._tz) + timedelta(days=1)).date()
        # A naive time is read as local time, with that day's DST offset.
        end = datetime(
            tomorrow.year, tomorrow.month, tomorrow.day, self._morning_hour, tzinfo=self._tz
        )
        return self.pause_until(end.timestamp())

    def pause_until(self, until: float) -> float:
        """Pause until the POSIX time ``until``."""
        self._until = until
        if self._on_change is not None:
            self._on_change(until)
        return until

    def resume(self) -> None:
        """Notify again from now on."""
        self._until = None
        if self._on_change is not None:
            self._on_change(None)

    def paused_until(self) -> float | None:
        """The end of the current pause, or None when not paused (an expired pause ends)."""
        if self._until is not None and self._clock() >= self._until:
            self._until = None
        return self._until

    def is_paused(self) -> bool:
        """True while a pause is running."""
        return self.paused_until() is not None

    def seconds_left(self) -> float:
        """Seconds until the pause ends (0 when not paused)."""
        until = self.paused_until()
        return 0.0 if until is None else max(0.0, until - self._clock())

    def describe_end(self) -> str:
        """The pause's end for people, e.g. ``15:30`` or ``Tue 08:00``; empty when not paused."""
        until = self.paused_until()
        if until is None:
            return ""
        end = datetime.fromtimestamp(until, self._tz)
        now = datetime.fromtimestamp(self._clock(), self._tz)
        return end.strftime("%H:%M" if end.date() == now.date() else "%a %H:%M")
