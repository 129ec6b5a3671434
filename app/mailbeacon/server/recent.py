"""A bounded in-memory window of recent hits per message (context for classify)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

from mailbeacon.core.classify import PriorHit
from mailbeacon.core.events import Verdict

MessageRef = tuple[int, str]  # (user id, message key): one user cannot touch another's


class RecentHits:
    """The last hits of each message, bounded per message, in age and in total.

    Memory stays bounded: at most ``per_message`` hits of one message, none older than
    ``max_age`` seconds when read, and at most ``total`` hits overall (the messages
    hit longest ago are forgotten first).
    """

    def __init__(self, per_message: int = 64, max_age: float = 600.0, total: int = 100_000) -> None:
        self._per_message = per_message
        self._max_age = max_age
        self._total_limit = total
        self._total = 0
        # Lists, not deques: most messages have one or two hits in the window, and a
        # deque allocates room for 64 at once (docs/performance.md, "The pixel path").
        self._messages: OrderedDict[MessageRef, list[PriorHit]] = OrderedDict()

    def __len__(self) -> int:
        return self._total

    def get(self, ref: MessageRef, now: float) -> tuple[PriorHit, ...]:
        """The recent hits of a message, oldest first."""
        window = self._messages.get(ref)
        if window is None:
            return ()
        expired = 0
        for prior in window:
            if now - prior.hit.at <= self._max_age:
                break
            expired += 1
        if expired:
            del window[:expired]
            self._total -= expired
        if not window:
            del self._messages[ref]
            return ()
        return tuple(window)

    def add(self, ref: MessageRef, prior: PriorHit) -> None:
        """Remember a stored hit."""
        window = self._messages.get(ref)
        if window is None:
            self._messages[ref] = [prior]
        else:
            self._messages.move_to_end(ref)
            if len(window) == self._per_message:
                del window[0]
                self._total -= 1
            window.append(prior)
        self._total += 1
        while self._total > self._total_limit:
            _, oldest = self._messages.popitem(last=False)
            self._total -= len(oldest)

    def revise(self, ref: MessageRef, event_id: int, verdict: Verdict) -> None:
        """Record a changed verdict of a remembered hit."""
        window = self._messages.get(ref)
        if window is None:
            return
        for i, prior in enumerate(window):
            if prior.id == event_id:
                window[i] = PriorHit(prior.id, prior.hit, verdict)
                return

    def resolve(self, refs: Iterable[MessageRef], resolve: Callable[[int], int]) -> None:
        """Give the provisional ids (negative) of these messages' hits their stored
        ones, once their group has committed (pg_store.py)."""
        for ref in refs:
            window = self._messages.get(ref)
            if window is None:
                continue
            for i, prior in enumerate(window):
                if prior.id < 0:
                    window[i] = PriorHit(resolve(prior.id), prior.hit, prior.verdict)

    def forget(self, refs: Iterable[MessageRef]) -> None:
        """Drop whole messages (after a failed commit their window is unreliable)."""
        for ref in refs:
            window = self._messages.pop(ref, None)
            if window is not None:
                self._total -= len(window)
