"""The tracking server's schema on PostgreSQL: created and migrated at start, once.

The statements are those of ``schema.py`` (one description for both back ends). The
version is the ``schema`` value in the ``meta`` table. Every instance runs
:func:`migrate` when it starts; the work happens in one transaction under an
advisory lock, so instances started together queue on the lock, and the ones that get
it after the first find the schema current and change nothing. The lock is a session
lock (``pg_advisory_lock``) taken before the transaction starts, so that the
transaction sees what the previous holder created. PostgreSQL's DDL is transactional:
a failed migration leaves the database as it was.
"""

from __future__ import annotations

import logging
import secrets

import psycopg

from mailbeacon.server.schema import (
    DB_ID_KEY,
    FLOOR_KEY,
    GENERATION_KEY,
    LEGACY_KEY,
    VERSION,
    SchemaTooNew,
    render,
    too_new_message,
)

log = logging.getLogger(__name__)

MIGRATIONS: tuple[tuple[str, ...], ...] = render("postgresql")
# The advisory lock every instance migrates under: any constant, the same for all.
MIGRATION_LOCK = 0x6D61696C62656163  # "mailbeac"


def stored_version(db: psycopg.Connection[tuple[object, ...]]) -> int:
    """The schema version (0 for an empty database)."""
    row = db.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return 0
    found = db.execute("SELECT value FROM meta WHERE key = %s", (LEGACY_KEY,)).fetchone()
    try:
        return int(str(found[0])) if found is not None else 0
    except ValueError:
        return 0


def refuse_if_newer(db: psycopg.Connection[tuple[object, ...]], where: str) -> None:
    """Raise :class:`SchemaTooNew` (having changed nothing) for a newer database."""
    version = stored_version(db)
    if version > VERSION:
        raise SchemaTooNew(too_new_message(where, version))


def migrate(db: psycopg.Connection[tuple[object, ...]], where: str) -> int:
    """Bring the database to :data:`VERSION`; returns the version it had.

    ``db`` must be in autocommit mode (no transaction open).
    """
    refuse_if_newer(db, where)
    if stored_version(db) == VERSION:
        return VERSION  # the usual case: no lock taken
    # A session lock, taken before the transaction begins: a transaction that starts
    # after the wait sees the tables another instance created meanwhile (one that
    # waited for a lock inside its transaction may still see its old catalog cache).
    db.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        start = _migrate_locked(db, where)
    finally:
        db.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    if start != VERSION:
        log.info(
            "%s the database schema in %s (version %d to %d)",
            "created" if start == 0 else "upgraded",
            where,
            start,
            VERSION,
        )
    return start


def _migrate_locked(db: psycopg.Connection[tuple[object, ...]], where: str) -> int:
    db.execute("BEGIN")
    try:
        # Read again under the lock: another instance may have migrated meanwhile.
        refuse_if_newer(db, where)
        start = stored_version(db)
        for version in range(start, VERSION):
            for statement in MIGRATIONS[version]:
                db.execute(statement.encode())
        _set(db, LEGACY_KEY, str(VERSION))
        if start == 0:
            _set(db, DB_ID_KEY, secrets.token_hex(8))
            _set(db, GENERATION_KEY, "1")
            _set(db, FLOOR_KEY, "0")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return start


def _set(db: psycopg.Connection[tuple[object, ...]], key: str, value: str) -> None:
    db.execute(
        "INSERT INTO meta (key, value) VALUES (%s, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
