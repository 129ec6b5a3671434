"""``mailbeacon server migrate --from sqlite:///… --to postgresql://…``: a team moves.

Everything a running server and the agents rely on is copied as it is: the meta
values (the server secret, so every pixel and link in mail already sent verifies;
the stream's database identity, generation and id floor, so agents resume where
they were; key generations and removed users), users with their ids and token
hashes, agent addresses, and events and revisions with their ids. The target's id
counter is set past every id the source ever handed out, so no id is reused. The
team's administration comes too: the policy (so no rep's agent starts tracking what
the team turned off), the console's administrators with their password hashes, each
rep's last agent connection and the agents' reported sends and replies (the team
report). Console sessions are not copied: administrators sign in again.

Resumable: events go over in chunks, each in one transaction with the id it reached
(meta ``migrate_progress``); a run interrupted anywhere starts again after the last
committed chunk. The target remembers which source it is being filled from
(``migrate_source``): a target that holds anything else is refused unless
``--into-non-empty``, and even then ids that collide are refused.

Stop the SQLite server first (or expect the events it stores meanwhile to be left
behind): run ``migrate`` again just before switching, it copies only what is new.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from mailbeacon.server.pg_store import PgStore
from mailbeacon.server.schema import DB_ID_KEY, EVENT_ROW, LEGACY_KEY
from mailbeacon.server.sqlite_store import SqliteStore

log = logging.getLogger(__name__)

SOURCE_KEY = "migrate_source"
PROGRESS_KEY = "migrate_progress"
CHUNK = 5000
# Meta values that describe the database itself, not the team's data.
_NOT_COPIED = {LEGACY_KEY, SOURCE_KEY, PROGRESS_KEY}
_EVENT_COLUMNS = EVENT_ROW
_REVISION_COLUMNS = ("id", "user_id", "cause_id", "event_id", "verdict", "reason", "counts")


class MigrationRefused(RuntimeError):
    """The migration cannot go on; the message says why, for the operator."""


@dataclass(frozen=True, slots=True)
class Migrated:
    """What a run copied."""

    users: int
    events: int
    revisions: int
    last_id: int
    resumed_after: int


def migrate(
    source: Path,
    target: str,
    *,
    into_non_empty: bool = False,
    chunk: int = CHUNK,
    after_chunk: Callable[[int], None] | None = None,
) -> Migrated:
    """Copy the SQLite database at ``source`` into the PostgreSQL database ``target``.

    ``after_chunk(last_id)`` runs after each committed chunk (tests interrupt there).
    """
    if not source.is_file():
        raise MigrationRefused(f"there is no database at {source}")
    src = SqliteStore(source)
    try:
        dst = PgStore(target, application_name="mailbeacon-migrate")
        try:
            return _copy(src, dst, into_non_empty, chunk, after_chunk)
        finally:
            dst.close()
    finally:
        src.close()


def _copy(
    src: SqliteStore,
    dst: PgStore,
    into_non_empty: bool,
    chunk: int,
    after_chunk: Callable[[int], None] | None,
) -> Migrated:
    source_id = src.get_meta(DB_ID_KEY) or ""
    db = dst.connection
    with dst.transaction():
        resumed = _check_target(src, dst, source_id, into_non_empty)
        dst.set_meta(SOURCE_KEY, source_id)
        users = _copy_small_tables(src, db)
    progress = int(dst.get_meta(PROGRESS_KEY) or 0) if resumed else 0
    events = revisions = 0
    last = progress
    for _ in range(10_000_000):  # bounded: each round copies a chunk or ends
        rows = src.raw(
            f"SELECT {', '.join(_EVENT_COLUMNS)} FROM events WHERE id > ? "  # noqa: S608
            "ORDER BY id LIMIT ?",
            (last, chunk),
        )
        if not rows:
            break
        high = int(str(rows[-1][0]))
        revision_rows = src.raw(
            f"SELECT {', '.join(_REVISION_COLUMNS)} FROM revisions "  # noqa: S608
            "WHERE cause_id > ? AND cause_id <= ? ORDER BY id",
            (last, high),
        )
        with dst.transaction():
            _copy_rows(db, "events", _EVENT_COLUMNS, rows)
            _copy_rows(db, "revisions", _REVISION_COLUMNS, revision_rows)
            dst.set_meta(PROGRESS_KEY, str(high))
        events += len(rows)
        revisions += len(revision_rows)
        last = high
        if after_chunk is not None:
            after_chunk(last)
    with dst.transaction():
        # Past every id the source ever handed out (deleted ones too): none is reused.
        handed_out = max(last, src.max_event_id(), src.sequence())
        db.execute("UPDATE event_counter SET next_id = greatest(next_id, %s)", (handed_out + 1,))
        for table in ("users", "revisions", "admins"):
            db.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"greatest((SELECT max(id) FROM {table}), 1))".encode()
            )
    log.info(
        "migrated %d users and %d events (ids up to %d) into %s", users, events, last, dst.where
    )
    return Migrated(users, events, revisions, last, progress)


def _check_target(src: SqliteStore, dst: PgStore, source_id: str, into_non_empty: bool) -> bool:
    """True when the target is being filled from this source already (resume)."""
    filled_from = dst.get_meta(SOURCE_KEY)
    if filled_from is not None and filled_from == source_id:
        return True
    db = dst.connection
    counts = db.execute(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM events)"
    ).fetchone()
    assert counts is not None
    users, events = int(str(counts[0])), int(str(counts[1]))
    if not users and not events:
        return False
    if not into_non_empty:
        raise MigrationRefused(
            f"{dst.where} already holds {users} users and {events} events (not from this "
            "SQLite database); migrate into an empty database, or add --into-non-empty "
            "to merge (ids must not collide)"
        )
    for (user_id,) in src.raw("SELECT id FROM users", ()):
        if db.execute("SELECT 1 FROM users WHERE id = %s", (user_id,)).fetchone():
            raise MigrationRefused(f"user id {user_id} exists in both databases")
    low_high = src.raw("SELECT min(id), max(id) FROM events", ())
    low, high = low_high[0]
    if (
        low is not None
        and db.execute(
            "SELECT 1 FROM events WHERE id BETWEEN %s AND %s LIMIT 1", (low, high)
        ).fetchone()
    ):
        raise MigrationRefused(f"event ids {low}..{high} overlap events already there")
    return False


def _copy_small_tables(src: SqliteStore, db: psycopg.Connection[tuple[object, ...]]) -> int:
    for key, value in src.raw("SELECT key, value FROM meta", ()):
        if key in _NOT_COPIED:
            continue
        db.execute(
            "INSERT INTO meta (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
    users = src.raw("SELECT id, name, token_hash, created_at FROM users ORDER BY id", ())
    with db.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO users (id, name, token_hash, created_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
            "token_hash = excluded.token_hash",
            users,
        )
        cursor.executemany(
            "INSERT INTO agent_addresses (user_id, ip, last_seen) VALUES (%s, %s, %s) "
            "ON CONFLICT (user_id, ip) DO UPDATE SET last_seen = "
            "greatest(agent_addresses.last_seen, excluded.last_seen)",
            src.raw("SELECT user_id, ip, last_seen FROM agent_addresses", ()),
        )
        for statement, query in _TEAM_TABLES:
            cursor.executemany(statement, src.raw(query, ()))
    return len(users)


# The team's administration (schema 4): (target statement, source query). A re-run
# (resume) leaves what the target has changed since, except the policy, which the
# source decides until the switch.
_TEAM_TABLES = (
    (
        "INSERT INTO policy (key, value, enforced, changed_at) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
        "enforced = excluded.enforced, changed_at = excluded.changed_at",
        "SELECT key, value, enforced, changed_at FROM policy",
    ),
    (
        "INSERT INTO admins (id, name, password_hash, setup_hash, setup_expires, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        "SELECT id, name, password_hash, setup_hash, setup_expires, created_at FROM admins",
    ),
    (
        "INSERT INTO agent_seen (user_id, last_seen, version) VALUES (%s, %s, %s) "
        "ON CONFLICT (user_id) DO NOTHING",
        "SELECT user_id, last_seen, version FROM agent_seen",
    ),
    (
        "INSERT INTO rep_activity (user_id, message, kind, at) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT DO NOTHING",
        "SELECT user_id, message, kind, at FROM rep_activity",
    ),
)


def _copy_rows(
    db: psycopg.Connection[tuple[object, ...]],
    table: str,
    columns: tuple[str, ...],
    rows: list[tuple[object, ...]],
) -> None:
    if not rows:
        return
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with db.cursor() as cursor, cursor.copy(statement.encode()) as copy:
        for row in rows:
            copy.write_row(row)
