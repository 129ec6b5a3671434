"""The tracking server's schema on SQLite: its migrations (``PRAGMA user_version``).

The schema itself is described once for both back ends in ``schema.py``; this module
runs it on SQLite. The first release kept its version only in the ``meta`` table
(``schema = 1``) and left ``user_version`` at 0: such a file is read as version 1.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from mailbeacon.server.schema import (
    DB_ID_KEY,
    FLOOR_KEY,
    GENERATION_KEY,
    LEGACY_KEY,
    RESTORED_KEY,
    VERSION,
    SchemaTooNew,
    render,
    too_new_message,
)

__all__ = [
    "DB_ID_KEY", "FLOOR_KEY", "GENERATION_KEY", "LEGACY_KEY", "MIGRATIONS", "RESTORED_KEY",
    "VERSION", "SchemaTooNew", "migrate", "refuse_if_newer", "stored_version",
]

log = logging.getLogger(__name__)

# ``MIGRATIONS[n]`` takes a database from version ``n`` to ``n + 1``, as SQLite runs it.
MIGRATIONS: tuple[tuple[str, ...], ...] = render("sqlite")


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
        raise SchemaTooNew(too_new_message(str(path), version))


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
