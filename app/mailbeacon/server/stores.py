"""Opening the store a ``--db`` value names: a SQLite file or a PostgreSQL database."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import psycopg

from mailbeacon.server.config import Database, PostgresUrl
from mailbeacon.server.pg_store import PgStore
from mailbeacon.server.sqlite_store import SqliteStore
from mailbeacon.server.store import Store, first_line


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached; the message says why, for the operator."""


def open_store(db: Database, *, role: str = "mailbeacon-server") -> Store:
    """A new connection to ``db`` (migrated to the current schema if needed).

    ``role`` names the connection in PostgreSQL's ``pg_stat_activity``.
    """
    if isinstance(db, Path):
        return SqliteStore(db)
    return open_postgres(db, role)


def open_postgres(db: PostgresUrl, role: str = "mailbeacon-server") -> PgStore:
    """A connection to a PostgreSQL database (DatabaseUnavailable when unreachable)."""
    try:
        return PgStore(db.url, application_name=role)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"could not connect to {db}: {first_line(exc)}") from exc


# What a database (not a bug of ours) raises: for the commands' messages.
DATABASE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error, DatabaseUnavailable)
# ... and what opening one may raise besides (a folder that cannot be written).
OPEN_ERRORS: tuple[type[Exception], ...] = (OSError, *DATABASE_ERRORS)


def warn_retrying(logger: logging.Logger, failed: str, exc: BaseException) -> None:
    """One warning for a periodic database read that failed and will be tried again:
    the driver's gist for an outage, the traceback only for anything else (a bug)."""
    logger.warning(
        "%s (%s); trying again",
        failed,
        first_line(exc),
        exc_info=not isinstance(exc, DATABASE_ERRORS),
    )
