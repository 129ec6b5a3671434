"""Addresses each user's agents stream from: hits from there are the rep's own."""

from __future__ import annotations

import threading
from collections.abc import Iterable


class AgentAddresses:
    """Per user: addresses with a live stream, and addresses seen within ``ttl`` seconds.

    Updated on the event loop (stream connect/disconnect), read by the writer thread
    (classification), hence the lock. Bounded: ``per_user`` addresses per user, the
    least recently seen dropped first (live ones are kept).
    """

    def __init__(self, ttl: float, per_user: int = 64) -> None:
        self._ttl = ttl
        self._per_user = per_user
        self._lock = threading.Lock()
        self._seen: dict[int, dict[str, float]] = {}
        self._live: dict[int, dict[str, int]] = {}

    def load(self, rows: Iterable[tuple[int, str, float]]) -> None:
        """Start from what the store remembers."""
        with self._lock:
            for user_id, ip, last_seen in rows:
                seen = self._seen.setdefault(user_id, {})
                seen[ip] = max(last_seen, seen.get(ip, 0.0))
            for user_id in list(self._seen):
                self._trim(user_id)

    def connected(self, user_id: int, ip: str, now: float) -> None:
        """An agent of this user opened a stream from ``ip``."""
        with self._lock:
            live = self._live.setdefault(user_id, {})
            live[ip] = live.get(ip, 0) + 1
            self._seen.setdefault(user_id, {})[ip] = now
            self._trim(user_id)

    def disconnected(self, user_id: int, ip: str, now: float) -> None:
        """That stream closed."""
        with self._lock:
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

    def of(self, user_id: int, now: float) -> frozenset[str]:
        """The user's own addresses at ``now``."""
        with self._lock:
            live = self._live.get(user_id, {})
            seen = self._seen.get(user_id, {})
            if not live and not seen:
                return frozenset()
            recent = {ip for ip, at in seen.items() if now - at <= self._ttl}
            return frozenset(recent.union(live))

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
