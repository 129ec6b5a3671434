"""The SQLite store (the default): one file, WAL mode, every commit fsync'd."""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from mailbeacon.core.durable import private_file
from mailbeacon.core.events import EventType, Revision, ServerEvent, Verdict
from mailbeacon.server.sqlite_schema import (
    DB_ID_KEY,
    FLOOR_KEY,
    GENERATION_KEY,
    RESTORED_KEY,
    migrate,
    refuse_if_newer,
)
from mailbeacon.server.store import NewEvent, StreamItem, UserRecord

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000

# A None parameter binds NULL either way, but the sqlite3 module first looks for an
# adapter for it (a key tuple, a registry miss, two attribute lookups): ~0.28 µs per
# None, and a pixel hit's INSERT binds four. With this entry the lookup hits at once
# and the adapter, a C method returning None, costs almost nothing (docs/performance.md,
# "Instructions per request"). Process-wide by the module's design: None still binds
# NULL for every connection.
sqlite3.register_adapter(type(None), cast("Callable[[None], None]", {}.get))

_EVENT_COLUMNS = (
    "id, type, message, recipient, at, ip, user_agent, verdict, reason, inferred, link, url, "
    "counts, via"
)
_INSERT_EVENT = (
    "INSERT INTO events (user_id, type, message, recipient, at, ip, user_agent, verdict, "
    "reason, inferred, link, url, counts, via) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# NULL counts (rows from before schema 2) mean "as the verdict says".
_COUNTING_OPEN = (
    "SELECT 1 FROM events WHERE user_id = ? AND message = ? AND recipient IS ? "
    "AND type = ? AND coalesce(counts, verdict = ?) LIMIT 1"
)


class SqliteStore:
    """The store in one SQLite file. One connection; one thread at a time."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        # The server's secret and every rep's events: readable by this user alone.
        private_file(path)
        self.path = path
        self.where = str(path)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a batch is exactly
        # one transaction and one fsync.
        # Repeats counted in this transaction beyond the first per event (add_repeat),
        # written as one UPDATE each before anything reads them and at COMMIT.
        self._repeats: dict[tuple[int, int], int] = {}
        self._db = sqlite3.connect(
            str(path),
            isolation_level=None,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
        try:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Before anything that writes: a newer release's file is left untouched.
            refuse_if_newer(self._db, path)
            self._configure()
            migrate(self._db, path)
            self._start_generation()
        except BaseException:
            self._db.close()
            raise

    def _configure(self) -> None:
        self._db.execute("PRAGMA journal_mode = WAL")
        # Durability. In WAL mode a commit appends to the WAL file. With
        # synchronous=NORMAL that append is not fsync'd (only checkpoints are): a commit
        # survives kill -9 (the bytes are in the OS page cache) but the last commits can
        # vanish on power loss or a kernel crash. With FULL the WAL is fsync'd before
        # COMMIT returns, so "the hit was answered" implies "the hit is on disk" for both
        # kinds of crash. Group commit pays that fsync once per batch, not per hit.
        self._db.execute("PRAGMA synchronous = FULL")
        # macOS: a real flush to the medium, not just to the drive's cache.
        self._db.execute("PRAGMA fullfsync = ON")

    def _start_generation(self) -> None:
        """Name a new database, and start a new generation on a restored backup.

        ``server backup`` marks its copy (``RESTORED_KEY``); the first open of such
        a copy is a restore. Ids handed out after the backup was taken are not in
        it, and agents have seen them: the new generation's ids start above the
        current time in microseconds, which no id handed out before can have
        reached unless a million events a second were stored on average since the
        previous restore (docs/promises.md, "No event lost or doubled").
        """
        if self.get_meta(DB_ID_KEY) is not None and self.get_meta(RESTORED_KEY) is None:
            return  # the usual case: no write lock taken
        # Plain SQL, not self.transaction(): subclasses may wrap begin/commit and are
        # not set up yet while the constructor runs.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._new_generation_if_restored()
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _new_generation_if_restored(self) -> None:
        # Again under the write lock: another connection may have done it meanwhile.
        if self.get_meta(DB_ID_KEY) is None:
            self.set_meta(DB_ID_KEY, secrets.token_hex(8))
            self.set_meta(GENERATION_KEY, "1")
            self.set_meta(FLOOR_KEY, "0")
        if self.get_meta(RESTORED_KEY) is None:
            return
        generation = int(self.get_meta(GENERATION_KEY) or "1") + 1
        floor = max(self.max_event_id(), self._sequence(), int(time.time() * 1_000_000))
        self._db.execute("DELETE FROM sqlite_sequence WHERE name = 'events'")
        self._db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)", (floor,))
        self.set_meta(GENERATION_KEY, str(generation))
        self.set_meta(FLOOR_KEY, str(floor))
        self._db.execute("DELETE FROM meta WHERE key = ?", (RESTORED_KEY,))

    def raw(self, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        """Rows of a read-only query (``server migrate`` reads the tables as they are)."""
        return [tuple(row) for row in self._db.execute(sql, params).fetchall()]

    def sequence(self) -> int:
        """The highest event id ever handed out (deleted events included)."""
        return self._sequence()

    def _sequence(self) -> int:
        row = self._db.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'events'"
        ).fetchone()
        return 0 if row is None else int(row[0])

    def identity(self) -> tuple[str, int, int]:
        """(database identity, generation, id floor of the generation)."""
        with self.snapshot():
            db = self.get_meta(DB_ID_KEY) or ""
            generation = int(self.get_meta(GENERATION_KEY) or "1")
            floor = int(self.get_meta(FLOOR_KEY) or "0")
        return db, generation, floor

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction: BEGIN IMMEDIATE ... COMMIT (rolled back on error)."""
        self.begin()
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def begin(self) -> None:
        """BEGIN IMMEDIATE: take the write lock now, not at the first write."""
        self._repeats.clear()  # a transaction SQLite ended itself (disk full) left them
        self._db.execute("BEGIN IMMEDIATE")

    def try_begin(self) -> bool:
        """BEGIN IMMEDIATE without waiting: False when another connection is writing.

        Cheap enough for the event loop (no fsync, no wait); :meth:`begin` waits.
        """
        self._repeats.clear()
        self._db.execute("PRAGMA busy_timeout = 0")
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return False
            raise
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return True

    def commit(self) -> None:
        """COMMIT (with synchronous=FULL it returns after the WAL is fsync'd)."""
        self._flush_repeats()
        self._db.execute("COMMIT")

    def rollback(self) -> None:
        """ROLLBACK, if a transaction is open."""
        self._repeats.clear()
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _flush_repeats(self) -> None:
        repeats, self._repeats = self._repeats, {}
        if not repeats:
            return
        cursor = self._db.executemany(
            "UPDATE events SET repeats = repeats + ? WHERE id = ? AND user_id = ?",
            [(more, event_id, user_id) for (user_id, event_id), more in repeats.items()],
        )
        if cursor.rowcount != len(repeats):
            # Gone since they were stored (a user removed meanwhile): only counts lost.
            log.warning("%d repeated events not counted: the events are gone",
                        len(repeats) - max(cursor.rowcount, 0))

    @property
    def in_transaction(self) -> bool:
        """Whether a write transaction is open (SQLite ends one itself on a full disk)."""
        return self._db.in_transaction

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every query inside sees the same committed state."""
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def get_meta(self, key: str) -> str | None:
        """A server setting, or None."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a server setting."""
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def setdefault_meta(self, key: str, value: str) -> str:
        """The stored value, storing ``value`` first when there is none."""
        self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
        stored = self.get_meta(key)
        assert stored is not None  # just inserted or already there
        return stored

    def delete_meta(self, key: str) -> None:
        """Remove a server setting."""
        self._db.execute("DELETE FROM meta WHERE key = ?", (key,))

    def users_named(self, name: str) -> list[UserRecord]:
        """Every user with this name, oldest first (names need not be unique)."""
        rows = self._db.execute(
            "SELECT id, name FROM users WHERE name = ? ORDER BY id", (name,)
        ).fetchall()
        return [UserRecord(int(row[0]), str(row[1])) for row in rows]

    def delete_user(self, user_id: int) -> bool:
        """Delete the user's row; False if there was none."""
        return self._db.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount == 1

    def set_token_hash(self, user_id: int, token_hash: str) -> bool:
        """Replace the user's API token hash; False if there is no such user."""
        cursor = self._db.execute(
            "UPDATE users SET token_hash = ? WHERE id = ?", (token_hash, user_id)
        )
        return cursor.rowcount == 1

    def add_user(self, name: str, token_hash: str, created_at: str) -> int:
        """Create a user; returns its id."""
        cursor = self._db.execute(
            "INSERT INTO users (name, token_hash, created_at) VALUES (?, ?, ?)",
            (name, token_hash, created_at),
        )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    def get_user(self, user_id: int) -> UserRecord | None:
        """The user with this id, or None."""
        row = self._db.execute("SELECT id, name FROM users WHERE id = ?", (user_id,)).fetchone()
        return None if row is None else UserRecord(int(row[0]), str(row[1]))

    def user_by_token_hash(self, token_hash: str) -> UserRecord | None:
        """The user whose API token hashes to ``token_hash``."""
        row = self._db.execute(
            "SELECT id, name FROM users WHERE token_hash = ?", (token_hash,)
        ).fetchone()
        return None if row is None else UserRecord(int(row[0]), str(row[1]))

    def insert_event(self, new: NewEvent) -> int:
        """Store an event; returns its id."""
        event = new.event
        cursor = self._db.execute(
            _INSERT_EVENT,
            (
                new.user_id,
                event.type,
                event.message,
                event.recipient,
                event.at,
                event.ip,
                event.user_agent,
                event.verdict,
                event.reason,
                int(event.inferred),
                event.link,
                event.url,
                None if event.counts is None else int(event.counts),
                event.via,
            ),
        )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    def revise(self, user_id: int, cause_id: int, revision: Revision) -> bool:
        """Change an earlier event's verdict; False when it is not this user's event."""
        counts = revision.counts
        if counts is None:
            counts = revision.verdict == Verdict.HUMAN
        cursor = self._db.execute(
            "UPDATE events SET verdict = ?, reason = ?, counts = ? WHERE id = ? AND user_id = ?",
            (revision.verdict, revision.reason, int(counts), revision.id, user_id),
        )
        if cursor.rowcount != 1:
            return False
        self._db.execute(
            "INSERT INTO revisions (user_id, cause_id, event_id, verdict, reason, counts) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (user_id, cause_id, revision.id, revision.verdict, revision.reason, int(counts)),
        )
        return True

    def add_repeat(self, user_id: int, event_id: int) -> bool:
        """Count one more repeat of a stored event (False, outside a transaction, when
        it is not there).

        Inside the writer's group the repeats are counted here and added by one
        statement before anything reads them and at COMMIT, as on PostgreSQL: a
        flood's repeats are events stored within the flood window (or its token's
        hour), which retention, counting in days, has not removed.
        """
        if not self._db.in_transaction:
            cursor = self._db.execute(
                "UPDATE events SET repeats = repeats + 1 WHERE id = ? AND user_id = ?",
                (event_id, user_id),
            )
            return cursor.rowcount == 1
        key = (user_id, event_id)
        self._repeats[key] = self._repeats.get(key, 0) + 1
        return True

    def has_counting_open(self, user_id: int, message: str, recipient: str | None) -> bool:
        """Whether this recipient (None: the shared pixel) has an open that counts."""
        params = (user_id, message, recipient, EventType.OPEN, Verdict.HUMAN)
        row = self._db.execute(_COUNTING_OPEN, params).fetchone()
        return row is not None

    def stream_page(self, user_id: int, after: int, limit: int) -> list[StreamItem]:
        """Up to ``limit`` events with id > ``after``, each followed by its revisions."""
        with self.snapshot():
            rows = self._db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE user_id = ? AND id > ? "  # noqa: S608
                "ORDER BY id LIMIT ?",
                (user_id, after, limit),
            ).fetchall()
            if not rows:
                return []
            revisions = self._db.execute(
                "SELECT cause_id, event_id, verdict, reason, counts FROM revisions "
                "WHERE user_id = ? AND cause_id > ? AND cause_id <= ? ORDER BY cause_id, id",
                (user_id, after, int(rows[-1][0])),
            ).fetchall()
        by_cause: dict[int, list[Revision]] = {}
        for cause_id, event_id, verdict, reason, counts in revisions:
            by_cause.setdefault(int(cause_id), []).append(
                Revision(
                    int(event_id), str(verdict), str(reason),
                    None if counts is None else bool(counts),
                )
            )
        items: list[StreamItem] = []
        for row in rows:
            event = _event_from_row(row)
            items.append(StreamItem(event.id, event=event))
            items.extend(StreamItem(event.id, revision=r) for r in by_cause.get(event.id, ()))
        return items

    def touch_agent_address(self, user_id: int, ip: str, seen_at: float) -> None:
        """Remember that an agent of this user connected from ``ip``."""
        self._db.execute(
            "INSERT INTO agent_addresses (user_id, ip, last_seen) VALUES (?, ?, ?) "
            "ON CONFLICT (user_id, ip) DO UPDATE SET last_seen = "
            "max(last_seen, excluded.last_seen)",
            (user_id, ip, seen_at),
        )

    def agent_addresses(self, since: float) -> Iterator[tuple[int, str, float]]:
        """(user id, address, last seen) seen at or after ``since``."""
        rows = self._db.execute(
            "SELECT user_id, ip, last_seen FROM agent_addresses WHERE last_seen >= ?", (since,)
        ).fetchall()
        for user_id, ip, last_seen in rows:
            yield int(user_id), str(ip), float(last_seen)

    def event_span(self, before: str) -> tuple[int, int] | None:
        """(lowest, highest) id of the events stored before ``before`` (ISO 8601 UTC)."""
        row = self._db.execute(
            "SELECT min(id), max(id) FROM events WHERE at < ?", (before,)
        ).fetchone()
        return None if row is None or row[0] is None else (int(row[0]), int(row[1]))

    def delete_events(self, first: int, last: int, before: str) -> int:
        """Delete the events with ids in [first, last] stored before ``before``."""
        cursor = self._db.execute(
            "DELETE FROM events WHERE id BETWEEN ? AND ? AND at < ?", (first, last, before)
        )
        return int(cursor.rowcount)

    def delete_orphan_revisions(self) -> int:
        """Delete revisions whose event or cause no longer exists."""
        cursor = self._db.execute(
            "DELETE FROM revisions WHERE event_id NOT IN (SELECT id FROM events) "
            "OR cause_id NOT IN (SELECT id FROM events)"
        )
        return int(cursor.rowcount)

    def truncate_ips(
        self, first: int, last: int, before: str, truncate: Callable[[str], str]
    ) -> int:
        """Replace the address of events in [first, last] stored before ``before`` by
        ``truncate(address)``; returns how many changed."""
        self._db.create_function("mb_truncate_ip", 1, truncate, deterministic=True)
        cursor = self._db.execute(
            "UPDATE events SET ip = mb_truncate_ip(ip) WHERE id BETWEEN ? AND ? AND at < ? "
            "AND ip != mb_truncate_ip(ip)",
            (first, last, before),
        )
        return int(cursor.rowcount)

    def max_event_id(self) -> int:
        """The highest event id so far (0 for none)."""
        row = self._db.execute("SELECT max(id) FROM events").fetchone()
        return int(row[0] or 0)

    def has_event(
        self, event_id: int, user_id: int, message: str, at: str, ip: str, type_: str
    ) -> bool:
        """Whether this exact event is stored (ids are never provisional here)."""
        row = self._db.execute(
            "SELECT 1 FROM events WHERE id = ? AND user_id = ? AND message = ? AND at = ?",
            (event_id, user_id, message, at),
        ).fetchone()
        return row is not None

    def resolver(self) -> Callable[[int], int] | None:
        """Ids handed out here are stored ids: nothing to map."""
        return None

    def unreachable(self) -> bool:
        """A file is never out of reach the way a database server is."""
        return False

    def rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Rows of a query (``?`` placeholders)."""
        self._flush_repeats()
        return [tuple(row) for row in self._db.execute(sql, params).fetchall()]

    def write(self, sql: str, params: tuple[object, ...] = ()) -> int:
        """Run one statement (``?`` placeholders); the rows it changed."""
        self._flush_repeats()
        return self._db.execute(sql, params).rowcount

    def close(self) -> None:
        """Release the connection."""
        self._db.close()


def _event_from_row(row: tuple[object, ...]) -> ServerEvent:
    (event_id, type_, message, recipient, at, ip, user_agent, verdict, reason, inferred,
     link, url, counts, via) = row
    return ServerEvent(
        id=int(str(event_id)),
        type=str(type_),
        message=str(message),
        recipient=None if recipient is None else str(recipient),
        at=str(at),
        ip=str(ip),
        user_agent=str(user_agent),
        verdict=str(verdict),
        reason=str(reason),
        inferred=bool(inferred),
        link=None if link is None else int(str(link)),
        url=None if url is None else str(url),
        counts=None if counts is None else bool(counts),
        via=None if via is None else str(via),
    )
