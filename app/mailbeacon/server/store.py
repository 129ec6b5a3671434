"""What the tracking server keeps, behind one small interface (SQLite or PostgreSQL).

A store is one connection: not thread-safe, used by one thread at a time. The server
opens one for its single writer and a few (``--pool-size``) for reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Protocol

from mailbeacon.core.events import Revision, ServerEvent


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A rep enrolled on this server."""

    id: int
    name: str


# The id of an event not stored yet: the store assigns the real one.
UNSTORED = 0


@dataclass(slots=True)  # never changed once built; not frozen (docs/performance.md#records)
class NewEvent:
    """An event about to be stored: whose it is, and the event itself.

    ``event.id`` is ``UNSTORED``: the store assigns the id (``insert_event``).
    """

    user_id: int
    event: ServerEvent

    def with_id(self, event_id: int) -> ServerEvent:
        """The stored event as the stream carries it."""
        return replace(self.event, id=event_id)


@dataclass(frozen=True, slots=True)
class StreamItem:
    """One stream message in store order: an event, or a revision an event caused.

    ``seq`` is the id of the event (for a revision: the event that caused it), so a
    subscriber that has sent everything up to ``seq`` has sent this item too.
    """

    seq: int
    event: ServerEvent | None = None
    revision: Revision | None = None


class Store(Protocol):
    """Storage of users, server metadata, agent addresses and events."""

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        ...

    @property
    def where(self) -> str:
        """The database, as the operator named it (no password)."""
        ...

    def snapshot(self) -> AbstractContextManager[None]:
        """A read transaction: every query inside sees the same committed state."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """Group writes; committed durably on a clean exit, rolled back on an error."""
        ...

    def begin(self) -> None:
        """Start a write transaction (waits for another process's write to finish)."""
        ...

    def try_begin(self) -> bool:
        """Start a write transaction if that needs no waiting; False otherwise."""
        ...

    def commit(self) -> None:
        """Commit the write transaction durably (returns once it is on disk)."""
        ...

    def rollback(self) -> None:
        """Abandon the write transaction, if one is open."""
        ...

    @property
    def in_transaction(self) -> bool:
        """Whether a write transaction is open (the database may have ended it itself)."""
        ...

    def get_meta(self, key: str) -> str | None:
        """A server setting (secret, public URL, ...), or None."""
        ...

    def set_meta(self, key: str, value: str) -> None:
        """Set a server setting."""
        ...

    def setdefault_meta(self, key: str, value: str) -> str:
        """The stored value, storing ``value`` first if there is none (race-free)."""
        ...

    def delete_meta(self, key: str) -> None:
        """Remove a server setting."""
        ...

    def add_user(self, name: str, token_hash: str, created_at: str) -> int:
        """Create a user; returns its id."""
        ...

    def users_named(self, name: str) -> list[UserRecord]:
        """Every user with this name, oldest first."""
        ...

    def delete_user(self, user_id: int) -> bool:
        """Delete the user's row; False if there was none."""
        ...

    def set_token_hash(self, user_id: int, token_hash: str) -> bool:
        """Replace the user's API token hash; False if there is no such user."""
        ...

    def get_user(self, user_id: int) -> UserRecord | None:
        """The user with this id, or None."""
        ...

    def user_by_token_hash(self, token_hash: str) -> UserRecord | None:
        """The user whose API token hashes to ``token_hash``, or None."""
        ...

    def insert_event(self, new: NewEvent) -> int:
        """Store an event; returns its id (ids only ever increase)."""
        ...

    def revise(self, user_id: int, cause_id: int, revision: Revision) -> bool:
        """Change an earlier event's verdict because of event ``cause_id``.

        Returns False (and changes nothing) when that event is not this user's.
        """
        ...

    def add_repeat(self, user_id: int, event_id: int) -> bool:
        """Count one more repeat of this user's stored event (a flood's hit that is not
        stored as an event of its own). False (nothing changed) when there is no such
        event (deleted by retention, or never committed)."""
        ...

    def has_counting_open(self, user_id: int, message: str, recipient: str | None) -> bool:
        """Whether this recipient (None: the shared pixel) has an open that counts."""
        ...

    def stream_page(self, user_id: int, after: int, limit: int) -> list[StreamItem]:
        """Up to ``limit`` of the user's events with id > ``after``, oldest first, each
        followed by the revisions it caused."""
        ...

    def touch_agent_address(self, user_id: int, ip: str, seen_at: float) -> None:
        """Remember that an agent of this user connected from ``ip``."""
        ...

    def agent_addresses(self, since: float) -> Iterator[tuple[int, str, float]]:
        """(user id, address, last seen) of agent addresses seen at or after ``since``."""
        ...

    def identity(self) -> tuple[str, int, int]:
        """(database identity, generation, id floor): a restored backup is a new
        generation whose ids are all above the floor (docs/promises.md)."""
        ...

    def event_span(self, before: str) -> tuple[int, int] | None:
        """(lowest, highest) id of the events stored before ``before`` (ISO 8601 UTC)."""
        ...

    def delete_events(self, first: int, last: int, before: str) -> int:
        """Delete the events with ids in [first, last] stored before ``before``."""
        ...

    def delete_orphan_revisions(self) -> int:
        """Delete revisions whose event or cause no longer exists."""
        ...

    def truncate_ips(
        self, first: int, last: int, before: str, truncate: Callable[[str], str]
    ) -> int:
        """Truncate the addresses of events in [first, last] stored before ``before``."""
        ...

    def max_event_id(self) -> int:
        """The highest event id so far (0 for none)."""
        ...

    def has_event(
        self, event_id: int, user_id: int, message: str, at: str, ip: str, type_: str
    ) -> bool:
        """Whether this exact event is stored (the spool's check after a cut-off COMMIT;
        a provisional id, negative, means: look for it by what it holds)."""
        ...

    def resolver(self) -> Callable[[int], int] | None:
        """After a commit: how that group's provisional ids (negative) map to stored
        ones; None when every id handed out was a stored one (SQLite, always)."""
        ...

    def unreachable(self) -> bool:
        """Whether the last failure was the database not answering (the connection is
        lost): hits then go to the outage spool. Always False on SQLite."""
        ...

    def rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Rows of a query written for both back ends (``?`` placeholders): the team's
        administration (server/team.py, server/admin/) keeps its SQL in its own modules."""
        ...

    def write(self, sql: str, params: tuple[object, ...] = ()) -> int:
        """Run one statement written for both back ends (``?`` placeholders); returns
        the rows it changed."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def first_line(exc: BaseException) -> str:
    """The gist of a driver's error message, for one log line: libpq says what failed
    on the first line and adds hints on the next ones ("Is the server running…")."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0].strip() if lines else type(exc).__name__
