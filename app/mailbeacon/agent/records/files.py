"""Attachment contents of logged copies, stored once per SHA-256 as files.

Files live outside the database (``<data_dir>/attachments/<sha256>``) so the
database, which the activity feed reads, stays small. A file is written
atomically before the database row that names it, so a row never points at a
missing or half-written file; a crash in between leaves an unreferenced file
that the next identical attachment reuses.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from mailbeacon.core.durable import atomic_write

_SHA256 = re.compile(r"[0-9a-f]{64}")


class AttachmentFiles:
    """Content-addressed attachment files under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, content: bytes) -> tuple[str, int]:
        """Store ``content`` unless an identical one is stored; returns (sha256, size)."""
        digest = hashlib.sha256(content).hexdigest()
        path = self.path(digest)
        try:
            if path.stat().st_size == len(content):
                return digest, len(content)
        except FileNotFoundError:
            pass
        atomic_write(path, content)
        return digest, len(content)

    def path(self, sha256: str) -> Path:
        """Where the content with this hash lives; raises ValueError for a non-hash."""
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256

    def read(self, sha256: str) -> bytes:
        """The stored content; raises FileNotFoundError if it is not stored."""
        return self.path(sha256).read_bytes()
