"""Operator tasks on a server database: online backup and retention.

Both run safely next to a serving server: the backup reads one consistent snapshot
(WAL readers never block the writer), and retention works in short transactions so
hits keep being committed between them.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailbeacon.core.durable import replacing
from mailbeacon.core.ipranges import truncate_ip
from mailbeacon.server.sqlite_schema import RESTORED_KEY, stored_version
from mailbeacon.server.sqlite_store import BUSY_TIMEOUT_MS
from mailbeacon.server.store import Store

log = logging.getLogger(__name__)

# A change over the event ids [first, last]; returns how many rows it changed.
_Step = Callable[[int, int], int]
# Ids per retention transaction: small enough that the server's commits barely wait.
RETENTION_CHUNK = 2000


class MaintenanceError(RuntimeError):
    """The task could not be done; the message says why, for the operator."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    """What a backup wrote."""

    path: Path
    events: int
    schema_version: int


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What retention changed."""

    deleted_events: int
    deleted_revisions: int
    truncated_ips: int
    deleted_before: str
    truncated_before: str | None


def iso_cutoff(now: datetime, days: float) -> str:
    """The ``at`` value (UTC ISO 8601, as stored) ``days`` before ``now``."""
    cutoff = now.astimezone(UTC) - timedelta(days=days)
    return cutoff.strftime("%Y-%m-%dT%H:%M:%S.") + f"{cutoff.microsecond // 1000:03d}Z"


def pg_dump_command(url: str, dest: Path) -> str:
    """The command that backs up a PostgreSQL database consistently while it serves."""
    return f"pg_dump --format=custom --file={shlex.quote(str(dest))} {shlex.quote(url)}"


def backup(source: Path, dest: Path) -> BackupResult:
    """Copy the database at ``source`` to ``dest`` with SQLite's online backup.

    The copy is one consistent snapshot even while the server writes; it is written
    beside ``dest``, checked, synced, and only then renamed into place, so ``dest``
    is never a partial file. ``dest`` must not exist.
    """
    if not source.is_file():
        raise MaintenanceError(f"there is no database at {source}")
    if dest.exists():
        raise MaintenanceError(f"{dest} already exists; remove it or choose another name")
    with replacing(dest, strict=True, suffix=".partial") as tmp:
        try:
            result = _copy(source, tmp)
        except BaseException:
            with contextlib.suppress(OSError):
                Path(f"{tmp}-journal").unlink()
            raise
    return BackupResult(dest, result.events, result.schema_version)


def _copy(source: Path, dest: Path) -> BackupResult:
    # mode=rw: never create an empty database where the operator mistyped a path.
    src = sqlite3.connect(
        f"file:{source}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_MS / 1000
    )
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)  # pages=-1: one step, one read snapshot of the source
            _mark_restored(dst)
            # A self-contained file: no -wal/-shm beside it when it is opened later.
            dst.execute("PRAGMA journal_mode = DELETE")
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise MaintenanceError(f"the copy failed its integrity check: {check}")
            version = stored_version(dst)
            events = _count_events(dst)
        finally:
            dst.close()
    except sqlite3.DatabaseError as exc:
        raise MaintenanceError(f"could not back up {source}: {exc}") from exc
    finally:
        src.close()
    return BackupResult(dest, events, version)


def _mark_restored(db: sqlite3.Connection) -> None:
    """The copy, once served, is a restore: it starts a new generation of event ids
    above every id handed out before (``SqliteStore._start_generation``)."""
    try:
        with db:
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, '1')", (RESTORED_KEY,)
            )
    except sqlite3.OperationalError:
        return  # no meta table: not a server database (copied as it is)


def _count_events(db: sqlite3.Connection) -> int:
    try:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # no events table: not a server database (reported as 0 events)


def apply_retention(
    store: Store, now: datetime, days: float, truncate_days: float | None = None
) -> RetentionResult:
    """Delete events older than ``days``; truncate the addresses of those older than
    ``truncate_days`` to their /24 or /48. Works in short transactions."""
    deleted_before = iso_cutoff(now, days)
    deleted = _in_chunks(
        store, deleted_before, lambda a, b: store.delete_events(a, b, deleted_before)
    )
    with store.transaction():
        revisions = store.delete_orphan_revisions()
    truncated = 0
    truncated_before = None
    if truncate_days is not None:
        truncated_before = iso_cutoff(now, truncate_days)
        cutoff = truncated_before
        truncated = _in_chunks(
            store, cutoff, lambda a, b: store.truncate_ips(a, b, cutoff, truncate_ip)
        )
    log.info(
        "retention: deleted %d events and %d revisions before %s; truncated %d addresses",
        deleted, revisions, deleted_before, truncated,
    )
    return RetentionResult(deleted, revisions, truncated, deleted_before, truncated_before)


def _in_chunks(store: Store, before: str, step: _Step) -> int:
    span = store.event_span(before)
    if span is None:
        return 0
    first, last = span
    total = 0
    for low in range(first, last + 1, RETENTION_CHUNK):
        with store.transaction():
            total += step(low, min(low + RETENTION_CHUNK - 1, last))
    return total
