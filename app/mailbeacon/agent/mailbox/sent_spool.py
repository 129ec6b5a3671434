"""The kept originals on disk: each tracked send's message as the mail client handed it.

An original is kept durably before the relay answers 250 and released once Sent
is put right (or given up on), so nothing here may be lost half-written: each
file is written whole and renamed into place (core.durable). Per email
(``data/originals``)::

    <email id>.eml    one line of JSON (message id, key, copies...) + the original
    <email id>.json   progress: which outbox items settled, searches, removals

A file that cannot be read is removed on start: it is only a copy (the mail went
out, and the rep's mail client has its own).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailbeacon.agent.mailbox.sent_copies import CopyKind
from mailbeacon.core.durable import atomic_write, fsync_dir
from mailbeacon.core.language import Phrase, mark

log = logging.getLogger(__name__)

ORIGINALS_DIR = "originals"
MAGIC = b"MBO1 "
MAX_HEADER_LINE = 64 * 1024

_HEADER_FIELDS = ("email_id", "message_id", "message_key", "copies", "kept_at", "subject")
_PROGRESS_FIELDS = (
    "settled", "due_at", "next_attempt", "searches", "first_search_at", "removed",
    "clean_seen", "unproven", "append_owed", "note",
)  # fmt: skip


@dataclass(slots=True)
class KeptOriginal:
    """One tracked send whose Sent folder is still to be put right."""

    email_id: int
    message_id: str
    message_key: str
    copies: int  # outbox items (one per recipient with per-recipient copies)
    kept_at: float
    subject: str = ""
    # progress (the .json file)
    settled: dict[str, bool] = field(default_factory=dict)  # outbox item -> delivered?
    due_at: float | None = None  # every item settled
    next_attempt: float = 0.0
    searches: int = 0
    first_search_at: float | None = None
    removed: int = 0
    clean_seen: bool = False  # an untracked copy is (or was put) in Sent
    unproven: int = 0  # copies with this email's tracking that are not provably ours
    append_owed: bool = False  # tracked copies deleted first (Gmail); original not yet in
    note: str = ""
    failures: int = 0  # failed attempts in a row (memory only)
    seen: dict[tuple[int, int], CopyKind] = field(default_factory=dict)  # (validity, uid)

    @property
    def key(self) -> str:
        """The spool file stem."""
        return str(self.email_id)

    @property
    def delivered(self) -> int:
        """Outbox items that reached at least one recipient (each a copy in Sent)."""
        return sum(1 for ok in self.settled.values() if ok)

    @property
    def label(self) -> str:
        """How the rep knows this email."""
        if not self.subject:
            return self.message_id
        return Phrase(mark("“{subject}”"), subject=self.subject)

    def header(self) -> dict[str, Any]:
        """What never changes (the .eml file's first line)."""
        return {name: getattr(self, name) for name in _HEADER_FIELDS}

    def progress(self) -> dict[str, Any]:
        """What the .json file holds."""
        return {name: getattr(self, name) for name in _PROGRESS_FIELDS}

    @classmethod
    def from_json(cls, header: dict[str, Any], progress: dict[str, Any]) -> KeptOriginal:
        """Read back what header() and progress() wrote."""
        due = progress.get("due_at")
        first = progress.get("first_search_at")
        return cls(
            email_id=int(header["email_id"]),
            message_id=str(header["message_id"]),
            message_key=str(header["message_key"]),
            copies=int(header["copies"]),
            kept_at=float(header["kept_at"]),
            subject=str(header.get("subject", "")),
            settled={str(k): bool(v) for k, v in dict(progress.get("settled", {})).items()},
            due_at=None if due is None else float(due),
            next_attempt=float(progress.get("next_attempt", 0.0)),
            searches=int(progress.get("searches", 0)),
            first_search_at=None if first is None else float(first),
            removed=int(progress.get("removed", 0)),
            clean_seen=bool(progress.get("clean_seen", False)),
            unproven=int(progress.get("unproven", 0)),
            append_owed=bool(progress.get("append_owed", False)),
            note=str(progress.get("note", "")),
        )


class OriginalsSpool:
    """The kept originals on disk (blocking; call through ``asyncio.to_thread``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _eml(self, key: str) -> Path:
        return self.folder / f"{key}.eml"

    def _json(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def write(self, entry: KeptOriginal, original: bytes) -> None:
        """Keep ``original`` durably (written, fsynced, renamed, folder fsynced)."""
        line = json.dumps(entry.header(), ensure_ascii=True, separators=(",", ":"))
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _unlink(self._json(entry.key))  # a stale state of an earlier keep with this id
        atomic_write(self._eml(entry.key), MAGIC + line.encode("ascii") + b"\n" + original)

    def save(self, entry: KeptOriginal) -> None:
        """Record progress."""
        if self._eml(entry.key).exists():
            atomic_write(self._json(entry.key), json.dumps(entry.progress()).encode())

    def read(self, entry: KeptOriginal) -> bytes:
        """The original bytes."""
        with self._eml(entry.key).open("rb") as stream:
            stream.readline(MAX_HEADER_LINE)
            return stream.read()

    def remove(self, entry: KeptOriginal) -> None:
        """Release a kept original."""
        _unlink(self._eml(entry.key))
        _unlink(self._json(entry.key))
        fsync_dir(self.folder)

    def load(self) -> list[KeptOriginal]:
        """Everything kept, oldest first; unreadable leftovers are removed (they are copies)."""
        if not self.folder.is_dir():
            return []
        for leftover in self.folder.glob(".*.tmp"):
            _unlink(leftover)
        entries = []
        for path in sorted(self.folder.glob("*.eml")):
            entry = self._load(path)
            if entry is None:
                log.error("sent cleanup: removing the unreadable kept original %s", path.name)
                _unlink(path)
                _unlink(path.with_suffix(".json"))
            else:
                entries.append(entry)
        for state in self.folder.glob("*.json"):
            if not state.with_suffix(".eml").exists():
                _unlink(state)
        return sorted(entries, key=lambda e: e.kept_at)

    def _load(self, path: Path) -> KeptOriginal | None:
        try:
            with path.open("rb") as stream:
                line = stream.readline(MAX_HEADER_LINE)
            if not line.startswith(MAGIC) or not line.endswith(b"\n"):
                raise ValueError("no header line")
            header = json.loads(line[len(MAGIC) :])
            progress: dict[str, Any] = {}
            state = path.with_suffix(".json")
            if state.exists():
                try:
                    progress = json.loads(state.read_bytes())
                except ValueError:
                    log.warning("sent cleanup: progress of %s unreadable; starting over", path.name)
            return KeptOriginal.from_json(header, progress)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("sent cleanup: cannot read %s: %s", path.name, exc)
            return None


def discard_originals(data_dir: Path) -> None:
    """Remove every kept original (the feature is off: nobody will put Sent right)."""
    folder = data_dir / ORIGINALS_DIR
    if folder.is_dir():
        log.info("sent cleanup is off: removing the kept originals in %s", folder)
        shutil.rmtree(folder, ignore_errors=True)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
