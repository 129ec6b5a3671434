"""The PostgreSQL store: several server instances on one database (psycopg 3, sync).

Same interface as the SQLite store (store.py): one connection, one thread at a time.
psycopg's synchronous API fits how the server uses a store: the writer's blocking
parts (taking the lock, COMMIT) already run on a thread of their own, and reads run
on worker threads (reader.py). It measured faster than asyncpg for this use
(README, "Dependencies").

Event ids (docs/architecture.md, "Event ids on PostgreSQL"): ids come from the one
row of ``event_counter``, locked (``SELECT ... FOR UPDATE``) until COMMIT by every
transaction that stores events, so such transactions commit one after the other in
id order: a reader that sees id N sees every smaller id that will ever exist. A
subscriber resuming with ``after=N`` on any instance therefore never misses an
event that commits later with a smaller id.

A recorder's group (:meth:`begin`, :meth:`try_begin`) takes the lock at BEGIN when
it is free (one instance: always) and hands out stored ids at once. When another
instance holds it, the group does not wait: it is decided with provisional ids
(-1, -2, … in insertion order) and takes the lock inside its COMMIT's pipeline,
which computes the stored ids from the counter it has just locked
(``next_id + position``) and advances it; :meth:`resolver` maps provisional ids to
stored ones afterwards. Several instances then decide their groups at the same
time instead of taking turns, and the lock is held by a waiting group only while
PostgreSQL runs its statements (docs/performance.md, "PostgreSQL").
:meth:`transaction` (everything else) locks the counter at BEGIN, waiting for it.

The writer's statements are gathered and sent at COMMIT (one INSERT for the events):
the recorder calls :meth:`insert_event` on the event loop, which must not wait for a
network round trip per hit. The few calls that must read (an inferred open's check,
a revision of an event already committed) do, and see the gathered rows first.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import errors, pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from mailbeacon.core.events import EventType, Revision, ServerEvent, Verdict
from mailbeacon.server.pg_schema import migrate, refuse_if_newer
from mailbeacon.server.schema import DB_ID_KEY, EVENT_ROW, FLOOR_KEY, GENERATION_KEY
from mailbeacon.server.store import NewEvent, StreamItem, UserRecord

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10  # seconds: an unreachable database is said so, not waited on forever
# libpq's TCP settings for every connection to the database. Without them a database
# host that vanishes mid-statement (a network cut, not a refused connection) leaves
# the statement waiting until the kernel gives up (~15 minutes of retransmissions):
# the commit thread, and a graceful stop behind it, would wait as long. Keepalives
# find a silent peer of an idle connection (the listener's) within about a minute;
# tcp_user_timeout fails a statement whose bytes go unacknowledged for 30 s. Neither
# applies to a Unix socket, nor limits how long a statement may run.
_CONNECTION_OPTIONS: dict[str, int] = {
    "connect_timeout": CONNECT_TIMEOUT,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # milliseconds
}


def conninfo(url: str) -> str:
    """``url`` with the TCP settings above, where the URL does not set its own."""
    return make_conninfo("", **{**_CONNECTION_OPTIONS, **conninfo_to_dict(url)})


# The channel every instance LISTENs on; the payload is a hint, never trusted.
CHANNEL = "mailbeacon_events"
_COLUMNS = EVENT_ROW
_EVENT_COLUMNS = (
    "id, type, message, recipient, at, ip, user_agent, verdict, reason, inferred, link, url, "
    "counts, via"
)
_TYPES = (
    "bigint",
    "bigint",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "int",
    "int",
    "text",
    "int",
    "text",
    "int",
)
# One statement for a whole group, its rows as one JSON parameter: json.dumps costs
# a fraction of psycopg dumping a column array per parameter (a Python loop, with a
# regular expression per text element): 350 against 620 µs of client CPU for a
# group of 16 (docs/performance.md, "PostgreSQL").
_JSON_VALUES = [f"(e->>{i})::{t}" for i, t in enumerate(_TYPES)]  # id first
_INSERT_EVENTS = (
    f"INSERT INTO events ({', '.join(_COLUMNS)}) SELECT {', '.join(_JSON_VALUES)} "  # noqa: S608
    "FROM json_array_elements(%s::json) AS r(e)"
).encode()
_INSERT_REVISIONS = (
    b"INSERT INTO revisions (user_id, cause_id, event_id, verdict, reason, counts) "
    b"SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], "
    b"%s::text[], %s::int[])"
)
_ADD_REPEATS = (
    b"UPDATE events e SET repeats = e.repeats + v.n "
    b"FROM unnest(%s::bigint[], %s::bigint[], %s::int[]) AS v(id, user_id, n) "
    b"WHERE e.id = v.id AND e.user_id = v.user_id RETURNING e.id"
)
_ADVANCE = (
    b"WITH advanced AS (UPDATE event_counter SET next_id = %s RETURNING next_id) "
    b"SELECT pg_notify(%s, %s) FROM advanced"
)
# A recorder's group: the counter locked in the COMMIT's pipeline, ids computed from
# it. A provisional id p (-1, -2, ...) is stored as next_id - p - 1.
_LOCK_COUNTER = b"SELECT next_id FROM event_counter FOR UPDATE"
_INSERT_PROVISIONAL_EVENTS = (
    f"INSERT INTO events ({', '.join(_COLUMNS)}) "  # noqa: S608
    f"SELECT n.next_id - (e->>0)::bigint - 1, {', '.join(_JSON_VALUES[1:])} "
    "FROM event_counter n, json_array_elements(%s::json) AS r(e)"
).encode()
_INSERT_PROVISIONAL_REVISIONS = (
    b"INSERT INTO revisions (user_id, cause_id, event_id, verdict, reason, counts) "
    b"SELECT v.u, CASE WHEN v.c < 0 THEN n.next_id - v.c - 1 ELSE v.c END, "
    b"CASE WHEN v.e < 0 THEN n.next_id - v.e - 1 ELSE v.e END, v.verdict, v.reason, v.counts "
    b"FROM event_counter n, unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], "
    b"%s::text[], %s::int[]) AS v(u, c, e, verdict, reason, counts)"
)
_ADVANCE_BY = (
    b"WITH advanced AS (UPDATE event_counter SET next_id = next_id + %s RETURNING next_id) "
    b"SELECT pg_notify(%s, (next_id - 1)::text) FROM advanced"
)
_HIT_STORED = (
    "SELECT 1 FROM events WHERE user_id = %s AND message = %s AND at = %s "
    "AND ip = %s AND type = %s LIMIT 1"
)
_COUNTING_OPEN = (
    "SELECT 1 FROM events WHERE user_id = %s AND message = %s "
    "AND recipient IS NOT DISTINCT FROM %s AND type = %s "
    "AND coalesce(counts::boolean, verdict = %s) LIMIT 1"
)

# One round trip each: psycopg sends both statements in one simple query.
_BEGIN_LOCKED = b"BEGIN; SELECT next_id FROM event_counter FOR UPDATE"
_BEGIN_LOCKED_NOWAIT = b"BEGIN; SELECT next_id FROM event_counter FOR UPDATE NOWAIT"

Row = tuple[object, ...]
_EVENTS_AFTER = (
    f"SELECT e.user_id, {', '.join('e.' + c.strip() for c in _EVENT_COLUMNS.split(','))}, "  # noqa: S608
    "(SELECT coalesce(json_agg(json_build_array(r.event_id, r.verdict, r.reason, r.counts) "
    "ORDER BY r.id), '[]'::json) FROM revisions r "
    "WHERE r.user_id = e.user_id AND r.cause_id = e.id) "
    "FROM events e WHERE e.id > %s ORDER BY e.id LIMIT %s"
).encode()


def describe(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the PostgreSQL database"
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    name = info.get("dbname") or info.get("user") or ""
    return f"postgresql://{host}:{port}/{name}"


@dataclass(slots=True)
class _Pending:
    """An event stored in the open transaction, not sent yet."""

    row: list[object]  # in _COLUMNS order

    @property
    def user_id(self) -> int:
        return int(str(self.row[1]))


class PgStore:
    """The store on a PostgreSQL database. One connection; one thread at a time."""

    dialect = "postgresql"

    def __init__(self, url: str, *, application_name: str = "mailbeacon-server") -> None:
        self.url = url
        self.where = describe(url)
        self._application_name = application_name
        self._closed = False
        self._conn = self._connect()
        try:
            refuse_if_newer(self._conn, self.where)
            self.migrated_from = migrate(self._conn, self.where)
        except BaseException:
            self._conn.close()
            raise
        self._next_id = 0  # valid while a write transaction holds the counter
        self._counter_start = 0
        # A recorder's group: ids are provisional until its COMMIT (module docstring).
        self._provisional = False
        self._base: int | None = None  # the last group's first stored id
        self._events: dict[int, _Pending] = {}
        self._revisions: list[tuple[int, int, int, str, str, int]] = []
        self._repeats: dict[tuple[int, int], int] = {}

    def _connect(self) -> psycopg.Connection[Row]:
        connection = psycopg.connect(
            conninfo(self.url),
            autocommit=True,
            application_name=self._application_name,
        )
        # Kept as a plain attribute: other threads read it (pg_feed.Listener).
        self.backend_pid: int | None = connection.info.backend_pid
        return connection

    @property
    def _db(self) -> psycopg.Connection[Row]:
        """The connection; a new one when the last was lost (the database restarted,
        a network blip): the statement that met the loss failed, the next one works
        once the database answers again."""
        if self._lost() and not self._closed:
            if not (self._conn.broken or self._conn.closed):
                log.warning("%s: a commit cut off by an outage left its connection unusable "
                            "(still in pipeline mode); connecting again", self.where)
            self._conn.close()
            self._conn = self._connect()
        return self._conn

    def _lost(self) -> bool:
        """Whether the connection can take no more statements: lost, closed, or left in
        pipeline mode. psycopg leaves it so when a COMMIT's pipeline is cut off while
        results are pending ("cannot exit pipeline mode while busy"); the connection
        itself may still be up, and every later statement would fail with "PQsendQuery
        not allowed in pipeline mode" for as long as the server runs."""
        conn = self._conn
        return (
            conn.broken
            or conn.closed
            or conn.pgconn.pipeline_status != pq.PipelineStatus.OFF
        )

    @property
    def connection(self) -> psycopg.Connection[Row]:
        """The connection itself (``server migrate`` copies with COPY on it)."""
        return self._db

    def ping(self) -> None:
        """One round trip (raises when the database does not answer)."""
        self._db.execute("SELECT 1").fetchone()

    # -- transactions ---------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction with the counter locked from the start: ids are
        stored ids at once (rolled back on error)."""
        self._start(_BEGIN_LOCKED)
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def begin(self) -> None:
        """BEGIN a recorder's group: the counter locked now if it is free (stored ids
        at once, as one instance always finds it), else provisional ids and the
        counter locked inside the COMMIT's pipeline (another instance has it)."""
        try:
            self._start(_BEGIN_LOCKED_NOWAIT)
        except errors.LockNotAvailable:
            self._clear()
            self._db.execute(b"ROLLBACK; BEGIN")
            self._provisional = True

    def try_begin(self) -> bool:
        """:meth:`begin`, unless the connection must be made again (not on the event
        loop: :meth:`begin` does it, on the writer's thread)."""
        if self._lost():
            return False
        self.begin()
        return True

    def resolver(self) -> Callable[[int], int] | None:
        """How the last committed group's provisional ids map to stored ones (None
        when it had none)."""
        base = self._base
        if base is None:
            return None
        return lambda event_id: base - event_id - 1 if event_id < 0 else event_id

    def _start(self, begin: bytes) -> None:
        self._clear()
        cursor = self._db.execute(begin)
        cursor.nextset()  # past BEGIN's result, to the counter's row
        row = cursor.fetchone()
        if row is None:
            raise RuntimeError("the event_counter row is missing; the schema is damaged")
        self._next_id = self._counter_start = int(str(row[0]))

    def commit(self) -> None:
        """Send what was gathered and COMMIT, in one round trip (durable once it returns).

        One round trip matters: the commit runs on the writer's thread while the event
        loop serves requests, and each wait for the network gives the interpreter's
        lock away; taking it back can cost a switch interval (5 ms). COPY and separate
        statements measured 10 ms a group under load (tests/bench server_pg); one
        pipeline, a fraction of that.
        """
        db = self._db
        provisional = self._provisional and bool(self._events)
        self._base = None
        try:
            with db.cursor() as cursor, db.cursor() as repeats, db.cursor() as counter:
                with db.pipeline():
                    if provisional:
                        counter.execute(_LOCK_COUNTER)
                    self._send(cursor, repeats, provisional)
                    cursor.execute(b"COMMIT")
                if self._repeats:
                    self._check_repeats({int(str(row[0])) for row in repeats.fetchall()})
                if provisional:
                    row = counter.fetchone()
                    if row is None:
                        raise RuntimeError(
                            "the event_counter row is missing; the schema is damaged"
                        )
                    self._base = int(str(row[0]))
        except BaseException:
            self.rollback()
            raise
        finally:
            self._clear()

    def _send(
        self, cursor: psycopg.Cursor[Row], repeats: psycopg.Cursor[Row], provisional: bool
    ) -> None:
        """Queue the gathered statements in the pipeline."""
        if self._events:
            rows = [pending.row for pending in self._events.values()]
            insert = _INSERT_PROVISIONAL_EVENTS if provisional else _INSERT_EVENTS
            cursor.execute(insert, (json.dumps(rows, separators=(",", ":"), ensure_ascii=False),))
        if self._revisions:
            columns = [list(c) for c in zip(*self._revisions, strict=True)]
            revise = _INSERT_PROVISIONAL_REVISIONS if provisional else _INSERT_REVISIONS
            cursor.execute(revise, columns)
        if self._repeats:
            keys = list(self._repeats)
            # Planned each time, never prepared: a plan cached while the table was
            # nearly empty (a fresh server's first groups) joins by scanning every
            # event, group after group, until autovacuum next analyzes the table
            # (docs/performance.md, "PostgreSQL").
            repeats.execute(
                _ADD_REPEATS,
                ([k[1] for k in keys], [k[0] for k in keys], list(self._repeats.values())),
                prepare=False,
            )
        # One statement: the counter, and the NOTIFY that wakes every instance's
        # stream (they read by id; the payload is only a hint).
        if provisional:
            cursor.execute(_ADVANCE_BY, (len(self._events), CHANNEL))
        elif self._next_id != self._counter_start:
            cursor.execute(_ADVANCE, (self._next_id, CHANNEL, str(self._next_id - 1)))

    def _check_repeats(self, found: set[int]) -> None:
        missing = sorted({event_id for _user, event_id in self._repeats} - found)
        if missing:
            # Retention deleted them within the flood window: only the counts are lost.
            log.warning("repeats of events %s not counted: the events are gone", missing)

    def rollback(self) -> None:
        """ROLLBACK, if a transaction is open (nothing to do on a lost connection)."""
        self._clear()
        if self._lost():
            return  # the server ends a lost connection's transaction; _db replaces it
        if self._conn.info.transaction_status != pq.TransactionStatus.IDLE:
            self._conn.execute("ROLLBACK")

    def _clear(self) -> None:
        # A recorder's group never reads these: left from a locked transaction, they
        # would advance the counter to a stale value at its COMMIT.
        self._next_id = self._counter_start = 0
        self._provisional = False
        self._events.clear()
        self._revisions.clear()
        self._repeats.clear()

    @property
    def in_transaction(self) -> bool:
        """Whether a write transaction is open and usable (a failed statement ends it)."""
        if self._lost():
            return False
        return self._conn.info.transaction_status == pq.TransactionStatus.INTRANS

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every query inside sees the same committed state."""
        self._db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield
        finally:
            if self._db.info.transaction_status != pq.TransactionStatus.IDLE:
                self._db.execute("COMMIT")

    # -- meta and users -------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A server setting, or None."""
        row = self._db.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a server setting."""
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def setdefault_meta(self, key: str, value: str) -> str:
        """The stored value, storing ``value`` first when there is none."""
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT DO NOTHING", (key, value)
        )
        stored = self.get_meta(key)
        assert stored is not None  # just inserted or already there
        return stored

    def delete_meta(self, key: str) -> None:
        """Remove a server setting."""
        self._db.execute("DELETE FROM meta WHERE key = %s", (key,))

    def add_user(self, name: str, token_hash: str, created_at: str) -> int:
        """Create a user; returns its id."""
        row = self._db.execute(
            "INSERT INTO users (name, token_hash, created_at) VALUES (%s, %s, %s) RETURNING id",
            (name, token_hash, created_at),
        ).fetchone()
        assert row is not None
        return int(str(row[0]))

    def get_user(self, user_id: int) -> UserRecord | None:
        """The user with this id, or None."""
        row = self._db.execute("SELECT id, name FROM users WHERE id = %s", (user_id,)).fetchone()
        return None if row is None else UserRecord(int(str(row[0])), str(row[1]))

    def user_by_token_hash(self, token_hash: str) -> UserRecord | None:
        """The user whose API token hashes to ``token_hash``."""
        row = self._db.execute(
            "SELECT id, name FROM users WHERE token_hash = %s", (token_hash,)
        ).fetchone()
        return None if row is None else UserRecord(int(str(row[0])), str(row[1]))

    def users_named(self, name: str) -> list[UserRecord]:
        """Every user with this name, oldest first."""
        rows = self._db.execute(
            "SELECT id, name FROM users WHERE name = %s ORDER BY id", (name,)
        ).fetchall()
        return [UserRecord(int(str(row[0])), str(row[1])) for row in rows]

    def delete_user(self, user_id: int) -> bool:
        """Delete the user's row; False if there was none."""
        cursor = self._db.execute("DELETE FROM users WHERE id = %s", (user_id,))
        return cursor.rowcount == 1

    def set_token_hash(self, user_id: int, token_hash: str) -> bool:
        """Replace the user's API token hash; False if there is no such user."""
        cursor = self._db.execute(
            "UPDATE users SET token_hash = %s WHERE id = %s", (token_hash, user_id)
        )
        return cursor.rowcount == 1

    def all_users(self) -> list[tuple[int, str, str, str]]:
        """(id, name, token hash, created at) of every user (for ``server migrate``)."""
        rows = self._db.execute(
            "SELECT id, name, token_hash, created_at FROM users ORDER BY id"
        ).fetchall()
        return [(int(str(r[0])), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    # -- events -----------------------------------------------------------------------

    def insert_event(self, new: NewEvent) -> int:
        """Store an event (sent at COMMIT); returns its id (in a recorder's group, a
        provisional one: :meth:`resolver`)."""
        if self._provisional:
            event_id = -len(self._events) - 1
        else:
            event_id = self._next_id
            self._next_id += 1
        event = new.event
        self._events[event_id] = _Pending(
            [
                event_id,
                new.user_id,
                str(event.type),
                event.message,
                event.recipient,
                event.at,
                event.ip,
                event.user_agent,
                str(event.verdict),
                event.reason,
                int(event.inferred),
                event.link,
                event.url,
                None if event.counts is None else int(event.counts),
                event.via,
                0,
            ]
        )
        return event_id

    def revise(self, user_id: int, cause_id: int, revision: Revision) -> bool:
        """Change an earlier event's verdict; False when it is not this user's event."""
        counts = revision.counts
        if counts is None:
            counts = revision.verdict == Verdict.HUMAN
        pending = self._events.get(revision.id)
        if pending is not None:
            if pending.user_id != user_id:
                return False
            pending.row[8], pending.row[9], pending.row[13] = (
                str(revision.verdict),
                revision.reason,
                int(counts),
            )
        else:
            cursor = self._db.execute(
                "UPDATE events SET verdict = %s, reason = %s, counts = %s "
                "WHERE id = %s AND user_id = %s",
                (str(revision.verdict), revision.reason, int(counts), revision.id, user_id),
            )
            if cursor.rowcount != 1:
                return False
        self._revisions.append(
            (user_id, cause_id, revision.id, str(revision.verdict), revision.reason, int(counts))
        )
        return True

    def add_repeat(self, user_id: int, event_id: int) -> bool:
        """Count one more repeat of a stored event (counted at COMMIT for a committed one)."""
        pending = self._events.get(event_id)
        if pending is not None:
            if pending.user_id != user_id:
                return False
            pending.row[15] = int(str(pending.row[15])) + 1
            return True
        key = (user_id, event_id)
        self._repeats[key] = self._repeats.get(key, 0) + 1
        return True

    def has_counting_open(self, user_id: int, message: str, recipient: str | None) -> bool:
        """Whether this recipient (None: the shared pixel) has an open that counts."""
        for pending in self._events.values():
            row = pending.row
            if (
                row[1] == user_id
                and row[3] == message
                and row[4] == recipient
                and row[2] == str(EventType.OPEN)
                and (bool(row[13]) if row[13] is not None else row[8] == str(Verdict.HUMAN))
            ):
                return True
        params = (user_id, message, recipient, str(EventType.OPEN), str(Verdict.HUMAN))
        return self._db.execute(_COUNTING_OPEN, params).fetchone() is not None

    def stream_page(self, user_id: int, after: int, limit: int) -> list[StreamItem]:
        """Up to ``limit`` events with id > ``after``, each followed by its revisions."""
        with self.snapshot():
            rows = self._db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE user_id = %s AND id > %s "  # noqa: S608
                "ORDER BY id LIMIT %s",
                (user_id, after, limit),
            ).fetchall()
            if not rows:
                return []
            revisions = self._db.execute(
                "SELECT cause_id, event_id, verdict, reason, counts FROM revisions "
                "WHERE user_id = %s AND cause_id > %s AND cause_id <= %s ORDER BY cause_id, id",
                (user_id, after, int(str(rows[-1][0]))),
            ).fetchall()
        return [item for _user, item in _items([(user_id, *row) for row in rows], revisions)]

    def events_after(self, after: int, limit: int) -> list[tuple[int, StreamItem]]:
        """Every user's events with id > ``after`` (up to ``limit``), each followed by
        its revisions: ``(user id, item)`` in id order (what other instances stored).

        One statement, one round trip (the feed runs it after every commit on every
        instance): each event carries its revisions as a JSON array. A revision is
        stored in the transaction of the event that caused it, so it is visible
        exactly when that event is."""
        rows = self._db.execute(_EVENTS_AFTER, (after, limit)).fetchall()
        revisions: list[Row] = []
        events: list[Row] = []
        for row in rows:
            events.append(row[:-1])
            cause = row[1]
            revisions.extend((cause, *revision) for revision in _json_list(row[-1]))
        return _items(events, revisions)

    def touch_agent_address(self, user_id: int, ip: str, seen_at: float) -> None:
        """Remember that an agent of this user connected from ``ip``."""
        self._db.execute(
            "INSERT INTO agent_addresses (user_id, ip, last_seen) VALUES (%s, %s, %s) "
            "ON CONFLICT (user_id, ip) DO UPDATE SET last_seen = "
            "greatest(agent_addresses.last_seen, excluded.last_seen)",
            (user_id, ip, seen_at),
        )

    def agent_addresses(self, since: float) -> Iterator[tuple[int, str, float]]:
        """(user id, address, last seen) seen at or after ``since``."""
        rows = self._db.execute(
            "SELECT user_id, ip, last_seen FROM agent_addresses WHERE last_seen >= %s",
            (since,),
        ).fetchall()
        for user_id, ip, last_seen in rows:
            yield int(str(user_id)), str(ip), float(str(last_seen))

    def new_generation(self, now: float) -> tuple[int, int]:
        """Start the next generation after a restore (``server restored``): its ids start
        above every id handed out before, as a restored SQLite backup does
        (docs/promises.md): the current time in microseconds, or the counter if higher.
        Returns (generation, floor)."""
        with self.transaction():
            generation = int(self.get_meta(GENERATION_KEY) or "1") + 1
            floor = max(self._next_id - 1, self.max_event_id(), int(now * 1_000_000))
            self._next_id = floor + 1  # written, and notified, at COMMIT
            self.set_meta(GENERATION_KEY, str(generation))
            self.set_meta(FLOOR_KEY, str(floor))
        return generation, floor

    def identity(self) -> tuple[str, int, int]:
        """(database identity, generation, id floor of the generation)."""
        with self.snapshot():
            db = self.get_meta(DB_ID_KEY) or ""
            generation = int(self.get_meta(GENERATION_KEY) or "1")
            floor = int(self.get_meta(FLOOR_KEY) or "0")
        return db, generation, floor

    # -- retention --------------------------------------------------------------------

    def event_span(self, before: str) -> tuple[int, int] | None:
        """(lowest, highest) id of the events stored before ``before`` (ISO 8601 UTC)."""
        row = self._db.execute(
            "SELECT min(id), max(id) FROM events WHERE at < %s", (before,)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        return int(str(row[0])), int(str(row[1]))

    def delete_events(self, first: int, last: int, before: str) -> int:
        """Delete the events with ids in [first, last] stored before ``before``."""
        cursor = self._db.execute(
            "DELETE FROM events WHERE id BETWEEN %s AND %s AND at < %s", (first, last, before)
        )
        return int(cursor.rowcount)

    def delete_orphan_revisions(self) -> int:
        """Delete revisions whose event or cause no longer exists."""
        cursor = self._db.execute(
            "DELETE FROM revisions r WHERE NOT EXISTS (SELECT 1 FROM events e "
            "WHERE e.id = r.event_id) OR NOT EXISTS (SELECT 1 FROM events e "
            "WHERE e.id = r.cause_id)"
        )
        return int(cursor.rowcount)

    def truncate_ips(
        self, first: int, last: int, before: str, truncate: Callable[[str], str]
    ) -> int:
        """Replace the address of events in [first, last] stored before ``before`` by
        ``truncate(address)``; returns how many changed."""
        rows = self._db.execute(
            "SELECT id, ip FROM events WHERE id BETWEEN %s AND %s AND at < %s",
            (first, last, before),
        ).fetchall()
        changes = [(truncate(str(ip)), int(str(i))) for i, ip in rows if truncate(str(ip)) != ip]
        if changes:
            with self._db.cursor() as cursor:
                cursor.executemany("UPDATE events SET ip = %s WHERE id = %s", changes)
        return len(changes)

    def max_event_id(self) -> int:
        """The highest event id so far (0 for none)."""
        row = self._db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
        return 0 if row is None else int(str(row[0]))

    def has_event(
        self, event_id: int, user_id: int, message: str, at: str, ip: str, type_: str
    ) -> bool:
        """Whether this exact event is stored. A provisional id (negative: a group cut
        off while committing) says nothing of the stored one, so the event is looked
        for by what it holds: its message, time to the millisecond, address and type
        (two such hits would be one hit repeated, stored once)."""
        if event_id < 0:
            params: tuple[object, ...] = (user_id, message, at, ip, type_)
            return self._db.execute(_HIT_STORED, params).fetchone() is not None
        row = self._db.execute(
            "SELECT 1 FROM events WHERE id = %s AND user_id = %s AND message = %s AND at = %s",
            (event_id, user_id, message, at),
        ).fetchone()
        return row is not None

    def unreachable(self) -> bool:
        """Whether the connection is lost (the database is down or out of reach) or
        otherwise unusable until it is made again."""
        return self._lost()

    def rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Rows of a query (``?`` placeholders, as on SQLite)."""
        return list(self._db.execute(_placeholders(sql), params).fetchall())

    def write(self, sql: str, params: tuple[object, ...] = ()) -> int:
        """Run one statement (``?`` placeholders); the rows it changed."""
        return self._db.execute(_placeholders(sql), params).rowcount

    def close(self) -> None:
        """Release the connection."""
        self._closed = True
        self._clear()
        self._conn.close()


def _json_list(value: object) -> list[list[object]]:
    """A JSON array of arrays as psycopg hands it over (already parsed)."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, list)]


def _items(rows: list[Row], revisions: list[Row]) -> list[tuple[int, StreamItem]]:
    """Events (``user_id`` first, then the stream columns) with their revisions."""
    by_cause: dict[int, list[Revision]] = {}
    for cause_id, event_id, verdict, reason, counts in revisions:
        by_cause.setdefault(int(str(cause_id)), []).append(
            Revision(
                int(str(event_id)),
                str(verdict),
                str(reason),
                None if counts is None else bool(counts),
            )
        )
    items: list[tuple[int, StreamItem]] = []
    for row in rows:
        user_id = int(str(row[0]))
        event = _event_from_row(row[1:])
        items.append((user_id, StreamItem(event.id, event=event)))
        items.extend(
            (user_id, StreamItem(event.id, revision=r)) for r in by_cause.get(event.id, ())
        )
    return items


def _placeholders(sql: str) -> bytes:
    """SQLite's ``?`` placeholders as psycopg's ``%s`` (the shared SQL has no literal
    ``?`` or ``%``)."""
    return sql.replace("%", "%%").replace("?", "%s").encode("utf-8")


def _event_from_row(row: Row) -> ServerEvent:
    (
        event_id,
        type_,
        message,
        recipient,
        at,
        ip,
        user_agent,
        verdict,
        reason,
        inferred,
        link,
        url,
        counts,
        via,
    ) = row
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
