"""Durable files: a crash leaves either the old content or the new, never half of it.

The one rule is write the bytes, fsync them, rename into place, fsync the folder
that holds the new name. The server (backups, refreshed ranges), the agent (outbox,
settings, records, IMAP state) and the tray (autostart entry, templates) all need
it, and the only layer they may share is ``core``; so this module is core's one
piece of I/O. It uses the standard library only and decides nothing else.

``strict``: a folder fsync that fails raises. By default it is ignored, because
some filesystems refuse fsync on a folder while the rename still happened; the
outbox is strict because it answers 250 only once a message is surely on disk
(docs/promises.md#no-mail-lost).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

Chunks = bytes | Iterable[bytes | memoryview]


def atomic_write(
    path: Path,
    data: Chunks,
    mode: int = 0o600,
    *,
    strict: bool = False,
    tmp_dir: Path | None = None,
) -> None:
    """Replace ``path`` with ``data`` (bytes, or chunks written in order, never joined).

    Temp file, fsync, rename, fsync of ``path``'s folder. ``tmp_dir`` (same
    filesystem) holds the temp file instead of ``path``'s folder, for a spool that
    sweeps its own leftovers.
    """
    with replacing(path, mode, strict=strict, tmp_dir=tmp_dir) as tmp, tmp.open("wb") as out:
        _write_chunks(out, data)


@contextlib.contextmanager
def replacing(
    path: Path,
    mode: int = 0o600,
    *,
    strict: bool = False,
    suffix: str = ".tmp",
    tmp_dir: Path | None = None,
) -> Iterator[Path]:
    """A new empty temp file for the block to fill; then it becomes ``path`` durably.

    When the block ends normally the temp file is fsynced, given ``mode``, renamed
    over ``path`` and the folder fsynced. When it raises, the temp file is removed
    and ``path`` is untouched.
    """
    folder = path.parent if tmp_dir is None else tmp_dir
    private_dir(folder)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        fsync_file(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent, strict=strict)


def write_new(path: Path, data: Chunks, mode: int = 0o600) -> None:
    """Create ``path`` (it must not exist), write ``data`` and fsync it; no rename.

    For a caller that renames a batch of files itself and then fsyncs the folder
    once. A file left half-written by an error is the caller's to sweep.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        _write_chunks(out, data)
        out.flush()
        os.fsync(out.fileno())


def move(source: Path, target: Path, *, strict: bool = False) -> None:
    """Rename ``source`` to ``target`` durably: the new name, then the old name's removal."""
    os.replace(source, target)
    fsync_dir(target.parent, strict=strict)
    if source.parent != target.parent:
        fsync_dir(source.parent, strict=strict)


def fsync_file(path: Path) -> None:
    """Flush ``path``'s content to disk (written by someone else, e.g. SQLite)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path, *, strict: bool = False) -> None:
    """Make a rename in ``folder`` durable; see the module docstring for ``strict``."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        if strict:
            raise
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        if strict:
            raise
    finally:
        os.close(dir_fd)


def _write_chunks(out: BinaryIO, data: Chunks) -> None:
    if isinstance(data, bytes):
        out.write(data)
        return
    for chunk in data:
        out.write(chunk)


def private_dir(path: Path) -> Path:
    """``path`` and every missing parent created 0700: only the rep's own user can enter.

    Created with that mode, never chmod-ed afterwards, so no other local user can
    open a file in it in between (docs/promises.md, "Isolation"). A folder that
    already exists keeps its mode; :func:`make_private` tightens an old one.
    """
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 if it does not exist (before SQLite opens it).

    SQLite gives its ``-wal`` and ``-shm`` files the database file's mode, so a
    database created this way keeps all three readable by the rep alone.
    """
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return path


def make_private(path: Path, mode: int) -> None:
    """Tighten an existing folder or file of an older installation to ``mode``."""
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_mode & 0o777 != mode:
            os.chmod(path, mode)
