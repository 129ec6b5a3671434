"""Addresses each user's agents stream from: hits from there are the rep's own.

An address is the rep's only while an agent of that rep is connected from it, and
for ``window`` seconds after the last one left (docs/rules.md rule 5, ``self``):
long enough for the rep's mail client to open Sent after a short drop, short
enough that a prospect's guest Wi-Fi or a conference network is a person's again
once the rep has gone. ``ttl`` only bounds what the store reloads at start.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

# ServerConfig.self_address_minutes (default 15) sets it; this is its default.
DEFAULT_WINDOW = 15 * 60.0


@dataclass(frozen=True, slots=True)
class OwnAddresses:
    """A user's own addresses at one moment: those with an agent connected now, and
    those whose last agent left within the window (address → when it left)."""

    live: frozenset[str] = frozenset()
    left: dict[str, float] = field(default_factory=dict)
    # Every address that counts as the rep's: ``live`` and ``left``'s addresses.
    all: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        # Made once: the writer reads it for every hit.
        every = self.live.union(self.left) if self.left else self.live
        object.__setattr__(self, "all", every)


_NONE = OwnAddresses()


class AgentAddresses:
    """Per user: addresses with a live stream, and when the last one from each left.

    Updated on the event loop (stream connect/disconnect), read by the writer thread
    (classification), hence the lock. Bounded: ``per_user`` addresses per user, the
    least recently seen dropped first (live ones are kept).

    The writer asks for a user's addresses at every hit, and they change only when a
    stream opens or closes or a left address's window ends: each user's answer is
    kept with the moment it stops being true (``_answers``), and made again only
    after a change or past that moment (docs/performance.md, "The pixel path").
    """

    def __init__(self, ttl: float, per_user: int = 64, window: float = DEFAULT_WINDOW) -> None:
        self._ttl = ttl
        self._window = min(window, ttl)
        self._per_user = per_user
        self._lock = threading.Lock()
        self._seen: dict[int, dict[str, float]] = {}
        self._live: dict[int, dict[str, int]] = {}
        # Bumped by every change; an answer made under another version is stale.
        self._version = 0
        # user id → (version, made at, true until, the answer)
        self._answers: dict[int, tuple[int, float, float, OwnAddresses]] = {}

    @property
    def window(self) -> float:
        """Seconds an address stays the rep's after its last agent left."""
        return self._window

    def load(self, rows: Iterable[tuple[int, str, float]]) -> None:
        """Start from what the store remembers (no agent is connected yet)."""
        with self._lock:
            self._version += 1
            for user_id, ip, last_seen in rows:
                seen = self._seen.setdefault(user_id, {})
                seen[ip] = max(last_seen, seen.get(ip, 0.0))
            for user_id in list(self._seen):
                self._trim(user_id)

    def connected(self, user_id: int, ip: str, now: float) -> None:
        """An agent of this user opened a stream from ``ip``."""
        with self._lock:
            self._version += 1
            live = self._live.setdefault(user_id, {})
            live[ip] = live.get(ip, 0) + 1
            self._seen.setdefault(user_id, {})[ip] = now
            self._trim(user_id)

    def disconnected(self, user_id: int, ip: str, now: float) -> None:
        """That stream closed."""
        with self._lock:
            self._version += 1
            live = self._live.get(user_id, {})
            count = live.get(ip, 0) - 1
            if count > 0:
                live[ip] = count
            else:
                live.pop(ip, None)
                if not live:
                    self._live.pop(user_id, None)
            self._seen.setdefault(user_id, {})[ip] = now
            self._trim(user_id)

    def own(self, user_id: int, now: float) -> OwnAddresses:
        """The user's own addresses at ``now``, and why each counts."""
        kept = self._answers.get(user_id)
        # Read without the lock: a change racing with this hit is seen by the next one,
        # as if the hit had come a moment earlier.
        if kept is not None and kept[0] == self._version and kept[1] <= now < kept[2]:
            return kept[3]
        with self._lock:
            answer, until = self._own(user_id, now)
            self._answers[user_id] = (self._version, now, until, answer)
            return answer

    def _own(self, user_id: int, now: float) -> tuple[OwnAddresses, float]:
        """The answer at ``now`` and the moment it stops being true (a left address's
        window ends), the lock held."""
        live = self._live.get(user_id)
        seen = self._seen.get(user_id)
        if not live and not seen:
            return _NONE, math.inf
        live_set = frozenset(live or ())
        left = {
            ip: at for ip, at in (seen or {}).items()
            if ip not in live_set and now - at <= self._window
        }
        until = min((at + self._window for at in left.values()), default=math.inf)
        return OwnAddresses(live_set, left), until

    def of(self, user_id: int, now: float) -> frozenset[str]:
        """The user's own addresses at ``now``."""
        return self.own(user_id, now).all

    def live_count(self, user_id: int) -> int:
        """How many streams this user has open."""
        with self._lock:
            return sum(self._live.get(user_id, {}).values())

    def _trim(self, user_id: int) -> None:
        seen = self._seen.get(user_id)
        if seen is None or len(seen) <= self._per_user:
            return
        live = self._live.get(user_id, {})
        for ip, _ in sorted(seen.items(), key=lambda item: item[1]):
            if len(seen) <= self._per_user:
                break
            if ip not in live:
                del seen[ip]
