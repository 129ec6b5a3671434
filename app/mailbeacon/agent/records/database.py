"""The records database: one SQLite connection behind a lock, and its transactions.

The parts of ``RecordsStore`` (contacts, emails, events) build on this; see
``records.store`` for what the store guarantees.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from mailbeacon.agent.records.files import AttachmentFiles
from mailbeacon.agent.records.model import normalize_at
from mailbeacon.agent.records.schema import SchemaTooNew, migrate
from mailbeacon.core.durable import make_private, private_file

# The store's logger, as before the store was split in parts (operators filter on it).
log = logging.getLogger("mailbeacon.agent.records.store")

DB_NAME = "records.db"
BUSY_TIMEOUT_MS = 5000


class RecordsError(Exception):
    """The records file cannot be used; the message names it and says why."""


class RecordsDatabase:
    """The open records file: the connection, its lock and its transactions."""

    def __init__(
        self,
        path: Path,
        attachments_dir: Path | None = None,
        stream_source: str = "",
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Open (creating and migrating if needed) the database at ``path``."""
        self.path = path
        self.files = AttachmentFiles(attachments_dir or path.parent / "attachments")
        self.source = stream_source
        self._now = now
        self._lock = threading.RLock()
        self._conn = self._connect(path)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        try:
            # Logged mail bodies: the file (and so its -wal/-shm) is the rep's alone.
            private_file(path)
            for existing in (path, path.with_name(path.name + "-wal"),
                             path.with_name(path.name + "-shm")):  # fmt: skip
                make_private(existing, 0o600)  # an older installation's 0644 files
            conn = sqlite3.connect(
                path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise RecordsError(f"cannot open the records file {path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            old = migrate(conn)
        except SchemaTooNew as exc:
            conn.close()
            raise RecordsError(
                f"the records file {path} was written by a newer MailBeacon ({exc}); "
                "update MailBeacon"
            ) from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise RecordsError(
                f"the records file {path} is damaged or not a MailBeacon database ({exc}); "
                "move it aside to start with empty records"
            ) from exc
        if old == 0:
            log.info("created records database %s", path)
        return conn

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        # A read transaction gives multi-query reads one consistent snapshot.
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")

    def _stamp(self) -> str:
        return normalize_at(self._now())


    def _ensure_contact(self, conn: sqlite3.Connection, email: str, name: str = "") -> None:
        conn.execute(
            "INSERT INTO contacts (email, name, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (email) DO UPDATE SET name = excluded.name "
            "WHERE contacts.name = '' AND excluded.name != ''",
            (email, name.strip(), self._stamp()),
        )

