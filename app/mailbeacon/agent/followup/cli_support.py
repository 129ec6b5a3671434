"""What ``mailbeacon schedule`` and ``mailbeacon sequence`` share: the store, times and
words for a terminal."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from mailbeacon.agent.followup.store import FollowupStore
from mailbeacon.core.durable import private_dir
from mailbeacon.core.profile import Profile


def open_store(profile: Profile) -> FollowupStore:
    """The profile's follow-up store (created if need be)."""
    private_dir(profile.data_dir)
    return FollowupStore.in_dir(profile.data_dir)


def iso(at: float | None) -> str | None:
    """A stored time as UTC ISO 8601 (seconds), or None."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def plain(text: str) -> str:
    """Text from outside for a terminal: control characters replaced."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def fail(message: str, code: int) -> int:
    """Say why on stderr and return the exit code."""
    print(f"mailbeacon: {message}", file=sys.stderr)
    return code
