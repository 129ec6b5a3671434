"""The outage spool: hits stored in a local file while PostgreSQL cannot be reached.

The promise stays (docs/promises.md): a hit is answered only after it is stored
durably somewhere. While the database does not answer, the recorder appends each
group of hits to a spool file here, ``fsync``s it, and only then answers them. When
the database answers again the recorder replays the spool into it, oldest first,
in groups, before any newer hit (newer hits join the end of the spool meanwhile);
then it writes to the database directly again. Nobody has to do anything.

Exactly once: the entries of a file are numbered (1, 2, ...); each replayed group
records the number of its last entry in the ``meta`` table (``spool:FILE``) in the
same transaction as its events, and entries at or below that number are skipped.
A crash between that COMMIT and the file's removal replays nothing twice. A group
whose COMMIT was cut off (the connection dropped while committing) may or may not
have been stored: its entries carry the id each hit was given, and the replay skips
an entry whose event is there. The recorder's ids are provisional until its group
commits (negative, pg_store.py); for such an entry the replay looks for the event by
what it holds (message, time to the millisecond, address, type) instead.

One file per outage and process (``spool-<time>-<random>.jsonl``), written by one
process only, which holds an exclusive ``flock`` on it: instances may share the
folder. A file nobody holds (its server stopped or was killed) is taken over and
replayed by the next instance that starts on the folder. A line cut short by a crash
was never answered: it is ignored.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailbeacon.core.classify import Hit
from mailbeacon.core.events import EventType
from mailbeacon.server.recorder import HitRequest

log = logging.getLogger(__name__)

PROGRESS_PREFIX = "spool:"


@dataclass(frozen=True, slots=True)
class Spooled:
    """One spooled hit: its number in its file, the hit, and the id it was given by a
    COMMIT whose outcome is unknown (None: it was never committed; negative: a
    provisional id, which says nothing of the stored one)."""

    seq: int
    request: HitRequest
    maybe_id: int | None = None


def _to_json(request: HitRequest, maybe_id: int | None, seq: int) -> str:
    hit = request.hit
    record: dict[str, Any] = {
        "seq": seq,
        "user": request.user_id,
        "at": request.at,
        "ua": request.user_agent,
        "url": request.url,
        "store_ip": request.store_ip,
        "maybe_id": maybe_id,
        "hit": {
            "type": str(hit.type),
            "method": hit.method,
            "ip": hit.ip,
            "user_agent": hit.user_agent,
            "at": hit.at,
            "minted_at": hit.minted_at,
            "message": hit.message,
            "recipient": hit.recipient,
            "link": hit.link,
            "honeypot": hit.honeypot,
            "claimed_browser": hit.claimed_browser,
        },
    }
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def _from_json(line: str) -> Spooled:
    record = json.loads(line)
    raw = record["hit"]
    hit = Hit(
        type=EventType(raw["type"]),
        method=str(raw["method"]),
        ip=str(raw["ip"]),
        user_agent=str(raw["user_agent"]),
        at=float(raw["at"]),
        minted_at=int(raw["minted_at"]),
        message=str(raw["message"]),
        recipient=raw["recipient"],
        link=raw["link"],
        honeypot=bool(raw["honeypot"]),
        claimed_browser=bool(raw["claimed_browser"]),
    )
    request = HitRequest(
        int(record["user"]),
        hit,
        str(record["at"]),
        str(record["ua"]),
        record["url"],
        record["store_ip"],
    )
    return Spooled(int(record["seq"]), request, record["maybe_id"])


@dataclass(slots=True)
class _File:
    path: Path
    fd: int  # open, with this process's exclusive lock on it
    offset: int = 0  # bytes already replayed
    written: int = 0  # entries appended by this process (0: a file from before)

    @property
    def key(self) -> str:
        """The meta key holding how far this file was replayed."""
        return PROGRESS_PREFIX + self.path.name


class Spool:
    """Spool files in one folder, oldest first. Used by the recorder only."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.folder = folder
        self._files = [f for p in sorted(folder.glob("spool-*.jsonl")) if (f := _take(p))]
        self._writing: _File | None = None
        if self._files:
            log.warning(
                "%d spool file(s) left by a stopped server in %s: replaying them into the database",
                len(self._files),
                folder,
            )

    def pending(self) -> bool:
        """Whether entries wait to be replayed (or a file to be removed)."""
        return bool(self._files)

    def append(self, entries: list[tuple[HitRequest, int | None]]) -> None:
        """Append hits and fsync; returns once they are on disk. Blocking."""
        if self._writing is None:
            path = self.folder / f"spool-{time.time_ns():020d}-{secrets.token_hex(4)}.jsonl"
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._writing = _File(path, fd)
            self._files.append(self._writing)
            log.warning(
                "the database does not answer: storing hits in %s until it does", self._writing.path
            )
        file = self._writing
        lines = []
        for request, maybe_id in entries:
            file.written += 1
            lines.append(_to_json(request, maybe_id, file.written) + "\n")
        data = "".join(lines).encode("utf-8")
        for _ in range(len(data) + 1):  # bounded: each write makes progress
            written = os.write(file.fd, data)
            data = data[written:]
            if not data:
                break
        os.fsync(file.fd)
        if file.written == len(entries):
            _sync_folder(self.folder)  # the new file's name is durable too

    def head(self, limit: int) -> tuple[str, list[Spooled], int]:
        """The next entries of the oldest file: (its progress key, up to ``limit``
        entries, the offset after them). Empty when that file is done (see :meth:`drop`)."""
        file = self._files[0]
        entries: list[Spooled] = []
        offset = file.offset
        with file.path.open("rb") as source:
            source.seek(offset)
            for raw in source:
                if not raw.endswith(b"\n"):
                    break  # cut short by a crash: never answered
                try:
                    entries.append(_from_json(raw.decode("utf-8")))
                except (ValueError, KeyError, TypeError):
                    log.error("unreadable spool entry in %s at byte %d; skipped", file.path, offset)
                offset += len(raw)
                if len(entries) >= limit:
                    break
        return file.key, entries, offset

    def replayed(self, offset: int) -> None:
        """The entries before ``offset`` of the oldest file are in the database."""
        self._files[0].offset = offset

    def close(self) -> None:
        """Release the files (what is left in them is replayed at the next start)."""
        for file in self._files:
            os.close(file.fd)
        self._files.clear()
        self._writing = None

    def drop_head(self) -> None:
        """Remove the oldest file: every entry is in the database."""
        file = self._files.pop(0)
        if file is self._writing:
            self._writing = None
        file.path.unlink(missing_ok=True)
        os.close(file.fd)  # the lock goes with it
        log.info("replayed the spool file %s into the database", file.path.name)


def _take(path: Path) -> _File | None:
    """The file with this process's lock on it; None when another process holds it."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return _File(path, fd)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
