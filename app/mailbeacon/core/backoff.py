"""Waits between attempts that failed: capped exponential backoff with optional jitter.

One rule for every reconnect and retry loop (the event stream, the IMAP watcher, the
Sent-folder cleanup, the outbox): a fixed schedule would make every agent of a team
reconnect at the same moment after a server restart, so the wait grows and spreads.
Pure: randomness comes in as a function, so tests pass a fixed one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """``first * factor**attempt``, at most ``cap``, spread by up to ±``jitter`` of itself."""

    first: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: float = 0.0

    def delay(self, attempt: int, rand: Callable[[], float] | None = None) -> float:
        """The wait after failed attempt number ``attempt`` (0-based); ``rand`` in [0, 1)."""
        base = min(self.cap, self._grown(attempt))
        if not self.jitter or rand is None:
            return base
        spread = base * self.jitter
        return max(0.0, min(self.cap, base + (2 * rand() - 1) * spread))

    def _grown(self, attempt: int) -> float:
        try:
            return self.first * self.factor ** max(0, attempt)
        except OverflowError:  # about a thousand failures in a row: far past any cap
            return self.cap if self.first > 0 else 0.0


class Retry:
    """The failures in a row of one loop: the next wait, and a fresh start after success."""

    def __init__(self, backoff: Backoff, rand: Callable[[], float] | None = None) -> None:
        self.backoff = backoff
        self._rand = rand
        self.attempt = 0

    def next_delay(self) -> float:
        """The wait before the next attempt; each call counts one more failure."""
        wait = self.backoff.delay(self.attempt, self._rand)
        self.attempt += 1
        return wait

    def reset(self) -> None:
        """The loop succeeded: the next failure waits ``first`` again."""
        self.attempt = 0
