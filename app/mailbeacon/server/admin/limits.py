"""The console's login limit: a few failed logins from one address (or for one name)
within a window, then that address (or name) waits, whatever it tries.

In memory, per server process: a restart forgets it, and with several instances
each keeps its own count (an attacker gains a factor of the instance count, no more).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60
MAX_TRACKED = 10_000  # addresses and names remembered at most (memory stays bounded)


@dataclass
class LoginLimiter:
    """Failures per key (``ip:…`` and ``name:…``) within the window."""

    clock: Callable[[], float] = time.monotonic
    max_failures: int = MAX_FAILURES
    window: float = WINDOW_SECONDS
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def wait_seconds(self, *keys: str) -> float:
        """How long any of ``keys`` must still wait before trying again (0: may try)."""
        now = self.clock()
        longest = 0.0
        for key in keys:
            times = self._recent(key, now)
            if len(times) >= self.max_failures:
                longest = max(longest, times[0] + self.window - now)
        return longest

    def failed(self, *keys: str) -> None:
        """Count one failed login against each key."""
        now = self.clock()
        for key in keys:
            times = self._recent(key, now)
            times.append(now)
            self._failures[key] = times
        while len(self._failures) > MAX_TRACKED:
            self._failures.pop(next(iter(self._failures)))

    def succeeded(self, *keys: str) -> None:
        """A correct login clears its keys."""
        for key in keys:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
        return times
