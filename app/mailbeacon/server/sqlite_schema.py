"""The tracking server's SQLite schema and its migrations (``PRAGMA user_version``).

``MIGRATIONS[n]`` takes a database from version ``n`` to ``n + 1``; an empty file is
version 0. To change the schema, add a step at the end; never edit a step that has
shipped (databases in the field went through it as it was).

The first release kept its version only in the ``meta`` table (``schema = 1``) and
left ``user_version`` at 0: such a file is read as version 1.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

# The first release's schema, exactly as it shipped (IF NOT EXISTS included).
_V1: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
)""",
    # AUTOINCREMENT: an id is never handed out twice, even if rows are ever deleted.
    """CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    message TEXT NOT NULL,
    recipient TEXT,
    at TEXT NOT NULL,
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    verdict TEXT NOT NULL,
    reason TEXT NOT NULL,
    inferred INTEGER NOT NULL DEFAULT 0,
    link INTEGER,
    url TEXT
)""",
    "CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, id)",
    # A revision belongs to the event that caused it (cause_id), so a subscriber that
    # resumes after an event gets exactly the revisions that came later.
    """CREATE TABLE IF NOT EXISTS revisions (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    cause_id INTEGER NOT NULL,
    event_id INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    reason TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS revisions_by_cause ON revisions (user_id, cause_id)",
    """CREATE TABLE IF NOT EXISTS agent_addresses (
    user_id INTEGER NOT NULL,
    ip TEXT NOT NULL,
    last_seen REAL NOT NULL,
    PRIMARY KEY (user_id, ip)
)""",
    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', '1')",
)

# v2: whether an event counts as a person's (a Gmail image-proxy open does) and the
# proxy it came through; NULL on older rows means "as the verdict says". The
# (user, message) index serves the inferred-open lookup on every counting click.
_V2: tuple[str, ...] = (
    "ALTER TABLE events ADD COLUMN counts INTEGER",
    "ALTER TABLE events ADD COLUMN via TEXT",
    "ALTER TABLE revisions ADD COLUMN counts INTEGER",
    "CREATE INDEX events_by_message ON events (user_id, message)",
)

# v3: identical hits within the flood window (same token, address and user agent), and
# hits past the per-token hourly bound, are counted on the event they repeat instead of
# being stored as events of their own (server/recorder.py, FloodGuard).
_V3: tuple[str, ...] = (
    "ALTER TABLE events ADD COLUMN repeats INTEGER NOT NULL DEFAULT 0",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3)
VERSION = len(MIGRATIONS)
LEGACY_KEY = "schema"  # the first release's version marker in the meta table
# The stream's database identity and generation (meta keys; docs/promises.md, "No
# event lost or doubled"): a random name given at creation, the generation (1, and
# one more per restore), the id every event of this generation is above, and the
# mark `server backup` leaves on its copy so that opening it starts a generation.
DB_ID_KEY = "db_id"
GENERATION_KEY = "generation"
FLOOR_KEY = "generation_floor"
RESTORED_KEY = "restored_from_backup"


class SchemaTooNew(RuntimeError):
    """The database was written by a newer MailBeacon; it is left as it is."""


def stored_version(db: sqlite3.Connection) -> int:
    """The schema version of the open database (0 for an empty one)."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version:
        return version
    has_meta = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if has_meta is None:
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = ?", (LEGACY_KEY,)).fetchone()
    try:
        return int(row[0]) if row is not None else 0
    except ValueError:
        return 0


def refuse_if_newer(db: sqlite3.Connection, path: Path) -> None:
    """Raise :class:`SchemaTooNew` (having changed nothing) for a newer database."""
    version = stored_version(db)
    if version > VERSION:
        raise SchemaTooNew(
            f"the database {path} was written by a newer MailBeacon (schema version "
            f"{version}; this version knows up to {VERSION}). It was left unchanged: "
            "upgrade MailBeacon, or point --db at another file."
        )


def migrate(db: sqlite3.Connection, path: Path) -> int:
    """Bring the database to :data:`VERSION` in one transaction; returns the old version.

    ``db`` must be in autocommit mode (``isolation_level=None``).
    """
    refuse_if_newer(db, path)
    if stored_version(db) == VERSION:
        return VERSION  # the usual case: no write lock taken
    db.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the write lock: another process may have migrated meanwhile.
        refuse_if_newer(db, path)
        start = stored_version(db)
        for version in range(start, VERSION):
            for statement in MIGRATIONS[version]:
                db.execute(statement)
        # Kept in step for anyone reading the meta table.
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (LEGACY_KEY, str(VERSION)),
        )
        # PRAGMA takes no parameters; the value is our own integer.
        db.execute(f"PRAGMA user_version = {VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    if start:
        log.info("upgraded the database %s from schema version %d to %d", path, start, VERSION)
    return start
