"""The outbox's folders on disk and every file operation on them (blocking: the outbox
runs them in a worker thread).

Layout (under the profile's data dir, e.g. ``data/outbox``)::

    tmp/<id>.eml      being written; anything here at start is an unfinished enqueue
    queue/<id>.eml    one item: a header line (JSON: sender, recipients, meta) + the message
    queue/<id>.json   its delivery state (attempts, next attempt, last error, who has it)
    sent/<id>.eml     delivered to every recipient; on_delivered still to be called
    failed/<id>.eml   kept after a permanent failure, with failed/<id>.json (the replies)
    damaged/<id>.eml  unreadable at start: kept aside, never retried

Every write and rename is durable (core.durable, strict: a folder fsync that fails
fails the operation), so what :class:`Spool` reports done survives a crash
(docs/promises.md#no-mail-lost).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from mailbeacon.agent.sending.outbox_items import (
    MAX_HEADER_BYTES,
    ItemState,
    OutboxItem,
    QueuedItem,
)
from mailbeacon.core import durable

log = logging.getLogger(__name__)

MAGIC = b"MBQ1 "
# Room kept free beyond a message's own size (its header, state files, the records).
SPACE_MARGIN = 1024 * 1024

# (id, header line, item): an item ready to be written by Spool.write_new.
Prepared = tuple[str, bytes, OutboxItem]


class Spool:
    """The folders of one outbox; each method is one blocking, durable step."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.queue = root / "queue"
        self.sent = root / "sent"
        self.failed_dir = root / "failed"
        self._seq = itertools.count()

    def new_id(self) -> str:
        """A fresh item id; ids sort by creation time, so the queue is read oldest first."""
        return f"{time.time_ns():019d}-{next(self._seq) % 1000000:06d}-{secrets.token_hex(3)}"

    def ensure_dirs(self) -> None:
        """Create the folders (private to the rep) if missing."""
        for folder in (self.root, self.tmp, self.queue, self.sent, self.failed_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def check_space(self, size: int) -> None:
        """Raise OSError (ENOSPC) unless the disk has room for ``size`` bytes and a margin."""
        self.ensure_dirs()
        free = shutil.disk_usage(self.root).free
        if free < size + SPACE_MARGIN:
            raise OSError(
                errno.ENOSPC,
                f"not enough free disk space for the outbox in {self.root} "
                f"({free} bytes free, {size + SPACE_MARGIN} needed)",
            )

    def write_new(self, prepared: Iterable[Prepared]) -> None:
        """Queue a batch: each written and fsynced in ``tmp/``, then all renamed into
        ``queue/`` and the folder fsynced once. All or nothing."""
        self.ensure_dirs()
        written = []
        for item_id, header, item in prepared:
            tmp = self.tmp / f"{item_id}.eml"
            durable.write_new(tmp, (header, *item.pieces))
            written.append((tmp, self.queue / tmp.name))
        moved: list[Path] = []
        try:
            for tmp, final in written:
                os.replace(tmp, final)
                moved.append(final)
            durable.fsync_dir(self.queue, strict=True)
        except BaseException:
            # The caller answers 451: nothing of this batch may be sent later.
            for path in moved + [tmp for tmp, _final in written]:
                unlink_quietly(path)
            raise

    def write_state(self, path: Path, state: ItemState) -> None:
        """Replace the state file ``path`` durably (its temp file lives in ``tmp/``)."""
        content = json.dumps(state.to_json()).encode("utf-8")
        durable.atomic_write(path, content, strict=True, tmp_dir=self.tmp)

    def move(self, source: Path, target: Path, *, remove_state: bool) -> None:
        """Rename an item to another folder durably; maybe drop its old state file."""
        durable.move(source, target, strict=True)
        if remove_state:
            unlink_quietly(source.with_suffix(".json"))

    def move_failed(self, item: QueuedItem, kept: Path) -> None:
        """Keep a failed item in ``failed/``: its state (the replies) first, then the item."""
        self.write_state(kept.with_suffix(".json"), item.state)
        self.move(item.path, kept, remove_state=True)

    def requeue(self, item: QueuedItem, state: ItemState, target: Path) -> None:
        """Put a failed item back in ``queue/`` with a fresh ``state``."""
        self.write_state(target.with_suffix(".json"), state)
        self.move(item.path, target, remove_state=False)
        unlink_quietly(item.path.with_suffix(".json"))

    def recover(self) -> list[QueuedItem]:
        """Clean up after a crash and load the queue, oldest first."""
        self.ensure_dirs()
        for stale in self.tmp.iterdir():
            unlink_quietly(stale)
        items = []
        for path in sorted(self.queue.glob("*.eml")):
            item = self.load(path, path.with_suffix(".json"))
            if item is None:
                self.quarantine(path)
                continue
            items.append(item)
        for state in self.queue.glob("*.json"):
            if not state.with_suffix(".eml").exists():
                unlink_quietly(state)
        return items

    def failed(self) -> list[QueuedItem]:
        """Items kept after a permanent failure, oldest first."""
        items = []
        for path in sorted(self.failed_dir.glob("*.eml")):
            item = self.load(path, path.with_suffix(".json"))
            if item is not None:
                items.append(item)
        return items

    def load(self, path: Path, state_path: Path | None) -> QueuedItem | None:
        """The item in ``path`` (with its state), or None if it cannot be read."""
        try:
            with path.open("rb") as stream:
                line = stream.readline(MAX_HEADER_BYTES)
                size = os.fstat(stream.fileno()).st_size - len(line)
            if not line.startswith(MAGIC) or not line.endswith(b"\n"):
                raise ValueError("no MailBeacon queue header")
            header = json.loads(line[len(MAGIC) :])
            state = ItemState()
            if state_path is not None and state_path.exists():
                state = ItemState.from_json(json.loads(state_path.read_bytes()))
            return QueuedItem(
                id=path.stem,
                mail_from=str(header["mail_from"]),
                recipients=tuple(header["recipients"]),
                meta=header.get("meta", {}),
                created=float(header["created"]),
                size=size,
                path=path,
                state=state,
                eight_bit=bool(header.get("eight_bit", True)),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.error("outbox: cannot read queued item %s: %s", path.name, error)
            return None

    def quarantine(self, path: Path) -> None:
        """An unreadable item is kept aside, never deleted and never retried forever."""
        target = self.root / "damaged" / path.name
        target.parent.mkdir(mode=0o700, exist_ok=True)
        os.replace(path, target)
        log.error("outbox: moved unreadable item to %s", target)


def header_line(item: OutboxItem, now: float, eight_bit: bool) -> bytes:
    """The first line of a spool file: the envelope and meta, as ASCII JSON."""
    header = {
        "mail_from": item.mail_from,
        "recipients": list(item.recipients),
        "meta": dict(item.meta),
        "created": now,
        "eight_bit": eight_bit,
    }
    line = json.dumps(header, ensure_ascii=True, separators=(",", ":"))
    return MAGIC + line.encode("ascii") + b"\n"


def unlink_quietly(path: Path) -> None:
    """Remove ``path``; already gone is fine."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
