"""Put the rep's Sent folder right after a tracked send (no pixel in the rep's own Sent).

Providers such as Gmail and Microsoft 365 save into Sent exactly what they got
over SMTP: the tracked copy, one per recipient when each recipient gets a copy
of their own. Opening Sent would then load the pixel (a false "opened").

So the agent *keeps* the message as the mail client handed it, durably, before
the relay answers 250 (:meth:`SentCleanup.keep`), and once every copy left the
outbox (:meth:`SentCleanup.item_delivered`), it logs in to the rep's IMAP
account (the reply watcher's settings), finds Sent (special-use ``\\Sent``,
else a common name), searches ``HEADER Message-ID`` (never a scan) and fetches
only those few messages. A message there is *provably ours* when its
Message-ID equals the sent one AND it carries a pixel whose token verifies
with the rep's signing key for this rep and this email's message key. Those
are deleted (``UID EXPUNGE``; with Gmail moved to Trash and purged from there,
so they leave All Mail too); nothing else in Sent, and no other folder, is ever
changed. The original goes in (``APPEND``, ``\\Seen``) unless an untracked copy
is there already (a mail client that saves its own), and it goes in *before*
anything is deleted, so a crash never leaves Sent without the message. Gmail
keeps one message per Message-ID, so there the tracked copies go first and the
original is *owed* (remembered on disk) until it is in.

Microsoft 365 saves its copy with a delay: the search repeats (``retry_delays``)
until every delivered copy was found and removed, or ``search_window`` passed.
An unreachable server is retried with backoff for ``give_up_after``. Then the
kept original is released (deleted) and the rep is told through ``on_status``.

Spool (``data/originals``)::

    <email id>.eml    one line of JSON (message id, key, copies...) + the original
    <email id>.json   progress: which outbox items settled, searches, removals
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import json
import logging
import re
import shutil
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from mailbeacon.agent.mailbox.folders import find_folders
from mailbeacon.agent.mailbox.imap_client import (
    AuthenticationFailed,
    ClientStats,
    ConnectionClosed,
    ImapClient,
    ImapError,
    ListedMailbox,
    Mailbox,
    Value,
    quote,
)
from mailbeacon.agent.mailbox.watch import unreachable_message, wrong_password_message
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.sending.outbox import DeliveryFailure, QueuedItem
from mailbeacon.agent.settings.kinds import MailServerUrl, SettingError, is_loopback, parse_mail_url
from mailbeacon.agent.settings.secrets import Secret, SecretStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core import tokens
from mailbeacon.core.durable import atomic_write, fsync_dir
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.extract import header_value
from mailbeacon.core.mime import MimeError, decode_body, parse_message, walk
from mailbeacon.core.tokens import Kind
from mailbeacon.core.urls import CLICK_PREFIX, PIXEL_PREFIX, PIXEL_SUFFIX

log = logging.getLogger(__name__)

ORIGINALS_DIR = "originals"
MAGIC = b"MBO1 "
MAX_HEADER_LINE = 64 * 1024
MiB = 1024 * 1024
PROBLEM_PREFIX = "Sent folder not tidied"
HEADER_ITEMS = "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
SEEN = "\\Seen"
DELETED = "(\\Deleted)"
GMAIL = "X-GM-EXT-1"

# Pixel and click tokens in a decoded body (the shortest token is 58 characters).
_TOKEN = rb"([A-Za-z0-9_-]{58,})"
_PIXEL = re.compile(re.escape(PIXEL_PREFIX.encode()) + _TOKEN + re.escape(PIXEL_SUFFIX.encode()))
_CLICK = re.compile(re.escape(CLICK_PREFIX.encode()) + _TOKEN)
_SEARCHABLE = re.compile(r"^<?[\x21-\x7e]{1,990}>?$")


# ---------------------------------------------------------------- status


class CleanupState(StrEnum):
    """Where the cleanup stands (the last thing that happened)."""

    IDLE = "idle"
    WAITING = "waiting"  # looked; the provider's copy is not (all) there yet
    DONE = "done"  # one email put right (or nothing needed doing)
    NOT_FOUND = "not_found"  # nothing provably ours found: left alone
    INCOMPLETE = "incomplete"  # some tracked copies could not be removed
    READ_ONLY = "read_only"
    NO_SENT_FOLDER = "no_sent_folder"
    UNREACHABLE = "unreachable"
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 - a state name
    ERROR = "error"
    GAVE_UP = "gave_up"


_FINE = frozenset({CleanupState.IDLE, CleanupState.WAITING, CleanupState.DONE})


@dataclass(frozen=True, slots=True)
class CleanupStatus:
    """A state, for one email (``message_id``) or the account, and what it means."""

    state: CleanupState
    detail: str = ""
    message_id: str | None = None

    @property
    def problem(self) -> str | None:
        """A sentence for the rep's status list, or None when all is well."""
        if self.state in _FINE:
            return None
        return f"{PROBLEM_PREFIX}: {self.detail}"


@dataclass(frozen=True, slots=True)
class CleanupConfig:
    """Knobs; the defaults are for real providers, tests shorten them."""

    first_delay: float = 5.0  # after delivery: a mail client saves its own copy first
    retry_delays: tuple[float, ...] = (20.0, 30.0, 60.0, 120.0)  # looking again (M365)
    search_window: float = 600.0  # stop looking this long after the first search
    backoff_initial: float = 1.0  # server unreachable: first wait, doubling
    backoff_max: float = 300.0
    auth_retry_seconds: float = 15 * 60.0
    give_up_after: float = 3 * 86400.0  # unreachable this long after delivery: release
    expire_after: float = 8 * 86400.0  # kept, never delivered (the outbox gives up at 5 days)
    connect_seconds: float = 30.0
    max_candidates: int = 50  # messages one search may return that are looked at
    max_message_bytes: int = 64 * MiB  # a larger copy is not fetched (so not deleted)
    trash: str = "auto"  # "auto": move to Trash on Gmail; "always"; "never"
    sent_folder: str | None = None  # the folder's exact name, when discovery is wrong


@dataclass(slots=True)
class CleanupStats:
    """What the cleanup did and asked of the server (for the operator and for tests)."""

    sessions: int = 0
    passes: int = 0
    removed: int = 0
    appended: int = 0
    imap: ClientStats = field(default_factory=ClientStats)  # shared by every connection

    @property
    def commands(self) -> dict[str, int]:
        """IMAP commands sent, by name (``UID SEARCH``, ``UID FETCH``...)."""
        return self.imap.commands

    @property
    def fetched_messages(self) -> int:
        """Messages the server sent (headers or bodies), over all FETCH commands."""
        return self.imap.fetched_messages


# ---------------------------------------------------------------- kept originals


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
        return f"“{self.subject}”" if self.subject else self.message_id

    def header(self) -> dict[str, Any]:
        """What never changes."""
        return {
            "email_id": self.email_id,
            "message_id": self.message_id,
            "message_key": self.message_key,
            "copies": self.copies,
            "kept_at": self.kept_at,
            "subject": self.subject,
        }

    def progress(self) -> dict[str, Any]:
        """What the .json file holds."""
        return {
            "settled": self.settled,
            "due_at": self.due_at,
            "next_attempt": self.next_attempt,
            "searches": self.searches,
            "first_search_at": self.first_search_at,
            "removed": self.removed,
            "clean_seen": self.clean_seen,
            "unproven": self.unproven,
            "append_owed": self.append_owed,
            "note": self.note,
        }

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


# ---------------------------------------------------------------- what a copy is


class CopyKind(StrEnum):
    """What a message found in Sent is, for one sent email."""

    TRACKED = "tracked"  # provably ours: same Message-ID, carries our verified pixel
    CLEAN = "clean"  # same Message-ID, no tracking of this email: the untracked copy
    UNPROVEN = "unproven"  # this email's tracking, but not provably ours: left alone
    OTHER = "other"  # a different message (the header search matched a substring)


@dataclass(frozen=True, slots=True)
class Identity:
    """Whose pixels are ours: the rep's user id and signing key (from the enrollment)."""

    user_id: int
    signing_key: bytes


def classify_copy(
    raw: bytes, message_id: str, message_keys: Iterable[str], identity: Identity
) -> CopyKind:
    """What ``raw`` (a message in Sent) is for the email sent as ``message_id``."""
    if not same_message_id(header_value(raw, "Message-ID"), message_id):
        return CopyKind.OTHER
    keys = frozenset(message_keys)
    pixels, clicks = tracking_tokens(raw)
    for token in pixels:
        claims = tokens.verify(token, identity.signing_key)
        if (
            claims is not None
            and claims.kind is Kind.OPEN
            and claims.user_id == identity.user_id
            and claims.message_key in keys
        ):
            return CopyKind.TRACKED
    for token in (*pixels, *clicks):
        unverified = tokens.parse_unverified(token)
        if unverified is not None and unverified.message_key in keys:
            return CopyKind.UNPROVEN
    return CopyKind.CLEAN


def same_message_id(found: str | None, sent: str) -> bool:
    """Whether a Message-ID header names the sent email (whitespace and folding aside)."""
    if found is None:
        return False
    return "".join(found.split()) == "".join(sent.split())


def tracking_tokens(raw: bytes) -> tuple[list[str], list[str]]:
    """Pixel and click tokens in the message's text parts (transfer encodings undone)."""
    pixels: dict[str, None] = {}
    clicks: dict[str, None] = {}
    for body in _text_bodies(raw):
        for match in _PIXEL.finditer(body):
            pixels[match.group(1).decode("ascii")] = None
        for match in _CLICK.finditer(body):
            clicks[match.group(1).decode("ascii")] = None
    return list(pixels), list(clicks)


def _text_bodies(raw: bytes) -> list[bytes]:
    try:
        root = parse_message(raw)
    except MimeError:
        return [raw, binascii.a2b_qp(raw)]  # cannot split it: look at it whole
    bodies = [
        decode_body(raw, part, strict=False)
        for part in walk(root)
        if not part.children and part.content_type.startswith("text/")
    ]
    return bodies or [raw]


# ---------------------------------------------------------------- the worker


class _CannotLogIn(Exception):
    """Not a server problem: plain IMAP refused, or the password cannot be read."""


class _NoSentFolder(Exception):
    """The account has no folder that looks like Sent."""


@dataclass(slots=True)
class _Found:
    tracked: list[int] = field(default_factory=list)
    clean: list[int] = field(default_factory=list)
    unproven: list[int] = field(default_factory=list)


class SentCleanup:
    """Keeps originals and puts Sent right; ``await start()``/``await stop()``."""

    def __init__(
        self,
        folder: Path,
        url: MailServerUrl,
        password: Callable[[], str | None],
        identity: Identity,
        message_keys: Callable[[str], Iterable[str]] = lambda _message_id: (),
        enabled: Callable[[], bool] = lambda: True,
        on_status: Callable[[CleanupStatus], None] = lambda _status: None,
        *,
        allow_plain: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        config: CleanupConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``password`` is called in a worker thread on each login (a keyring read);
        ``message_keys`` gives the message keys recorded for a Message-ID (every
        send of it, duplicates included)."""
        self.url = url
        self._spool = OriginalsSpool(folder)
        self._password = password
        self._identity = identity
        self._message_keys = message_keys
        self._enabled = enabled
        self._on_status = on_status
        self._allow_plain = allow_plain
        self._ssl_context = ssl_context
        self.config = config or CleanupConfig()
        self._clock = clock
        self.status = CleanupStatus(CleanupState.IDLE)
        self.stats = CleanupStats()
        self._entries: dict[int, KeptOriginal] = {}
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._delay = self.config.backoff_initial
        self._busy = False
        self._stopping = False

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Load what was kept before (a restart) and start working."""
        loaded = await asyncio.to_thread(self._spool.load)
        for entry in loaded:
            self._entries.setdefault(entry.email_id, entry)
        if loaded:
            log.info("sent cleanup: %d email(s) to put right in Sent", len(loaded))
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self.run(), name="sent-cleanup")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop; a pass in progress may finish first (up to ``grace_seconds``)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()  # a cancel that lands as a wait ends is lost (wait_for): wake too
        if self._busy:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), grace_seconds)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # our caller is being cancelled, not just the worker
        self._stopping = False

    def retry_now(self) -> None:
        """Look now at everything delivered (the network came back, the rep asked)."""
        for entry in self._entries.values():
            if entry.due_at is not None:
                entry.next_attempt = 0.0
        self._wake.set()

    def pending(self) -> list[KeptOriginal]:
        """What is still kept, oldest first."""
        return sorted(self._entries.values(), key=lambda e: e.kept_at)

    async def wait_until(self, predicate: Callable[[], bool], within: float) -> bool:
        """Wait until ``predicate()`` holds (checked after every change); False after
        ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), remaining)
        return True

    def _changed(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    # ------------------------------------------------------------ the keeper

    async def keep(
        self, original: bytes, message_id: str, message_key: str, email_id: int, copies: int
    ) -> bool:
        """Keep the original of a tracked send durably (call before the relay says 250).

        ``copies`` is the number of outbox items the send became. False when it was
        not kept (the feature is off, or the disk refused: the mail goes out anyway).
        """
        if copies < 1 or not self._enabled():
            return False
        subject = " ".join((header_value(original[:MAX_HEADER_LINE], "Subject") or "").split())
        entry = KeptOriginal(
            email_id=email_id,
            message_id=message_id.strip(),
            message_key=message_key,
            copies=copies,
            kept_at=self._clock(),
            subject=subject[:200],
        )
        try:
            await asyncio.to_thread(self._spool.write, entry, original)
        except OSError as exc:
            log.warning("sent cleanup: cannot keep the original of %s: %s", message_id, exc)
            return False
        self._entries[email_id] = entry
        self._wake.set()  # the worker's next wake-up may now be this one's expiry
        self._changed()
        return True

    async def forget(self, email_id: int) -> None:
        """Drop a kept original (the send was not queued after all)."""
        entry = self._entries.pop(email_id, None)
        if entry is not None:
            await asyncio.to_thread(self._spool.remove, entry)
            self._changed()

    # ------------------------------------------------------------ the outbox's news

    async def item_delivered(self, item: QueuedItem) -> None:
        """The outbox's ``on_delivered``: one copy reached (some of) its recipients."""
        await self._settle(item, delivered=True)

    async def item_failed(self, item: QueuedItem, failure: DeliveryFailure | None = None) -> None:
        """The outbox's ``on_failed``: counts only a copy that reached nobody."""
        if item.state.delivered_to or item.pending:
            return  # partly delivered: item_delivered follows
        await self._settle(item, delivered=False)

    async def _settle(self, item: QueuedItem, delivered: bool) -> None:
        email_id = item.meta.get("email_id")
        if not isinstance(email_id, int):
            return
        entry = self._entries.get(email_id)
        if entry is None or item.id in entry.settled or entry.due_at is not None:
            return  # untracked, already released, or a callback repeated after a restart
        entry.settled[item.id] = delivered
        if len(entry.settled) >= entry.copies:
            if entry.delivered == 0:
                log.info("sent cleanup: %s reached nobody; nothing to put right", entry.message_id)
                await self._release(entry)
                return
            now = self._clock()
            entry.due_at = now
            entry.next_attempt = now + self.config.first_delay
        await asyncio.to_thread(self._spool.save, entry)
        self._wake.set()  # saved first: the worker's own saves come after this one
        self._changed()

    # ------------------------------------------------------------ the worker loop

    async def run(self) -> None:
        """Work through due emails; reconnect with backoff. Runs until stopped."""
        while not self._stopping:
            self._wake.clear()
            now = self._clock()
            await self._expire(now)
            due = [e for e in self.pending() if e.due_at is not None and e.next_attempt <= now]
            if not due:
                await self._pause(self._seconds_to_next(now))
                continue
            if not self._enabled():
                for entry in due:
                    await self._release(entry)
                continue
            await self._attempt(due)

    async def _attempt(self, due: list[KeptOriginal]) -> None:
        """One connection for the due emails; failures postpone them."""
        try:
            await self._session(due)
            self._delay = self.config.backoff_initial
            return
        except AuthenticationFailed as exc:
            status = CleanupStatus(CleanupState.WRONG_PASSWORD, wrong_password_message(exc))
            await self._postpone(due, self.config.auth_retry_seconds, status)
            return
        except _CannotLogIn as exc:
            await self._postpone(due, self.config.auth_retry_seconds,
                           CleanupStatus(CleanupState.ERROR, str(exc)))
            return
        except _NoSentFolder:
            for entry in due:
                await self._finish(entry, CleanupStatus(
                    CleanupState.NO_SENT_FOLDER,
                    f"no Sent folder was found on {self.url.host}, so the copy of "
                    f"{entry.label} with a pixel may still be in your sent mail",
                    entry.message_id,
                ))
            return
        except ssl.SSLError as exc:
            status = CleanupStatus(CleanupState.ERROR, f"secure connection failed: {exc}")
        except (OSError, TimeoutError, ConnectionClosed) as exc:
            status = CleanupStatus(CleanupState.UNREACHABLE, _unreachable(self.url, exc))
        except ImapError as exc:
            status = CleanupStatus(CleanupState.ERROR, f"the mail server said: {exc}")
        except Exception as exc:  # a bug must not end the cleanup for good
            log.exception("sent cleanup failed")
            status = CleanupStatus(CleanupState.ERROR, f"internal error: {exc}")
        await self._postpone(due, self._delay, status)
        self._delay = min(self.config.backoff_max, self._delay * 2)

    async def _postpone(
        self, due: list[KeptOriginal], delay: float, status: CleanupStatus
    ) -> None:
        """Try again later; release what waited longer than ``give_up_after``."""
        self._set_status(status)
        now = self._clock()
        for entry in due:
            if entry.email_id not in self._entries or entry.next_attempt > now:
                continue  # done, or rescheduled by a pass that worked
            if entry.due_at is not None and now - entry.due_at >= self.config.give_up_after:
                days = self.config.give_up_after / 86400
                await self._finish(entry, CleanupStatus(
                    CleanupState.GAVE_UP,
                    f"gave up after {days:g} days on putting {entry.label} right in Sent "
                    f"({status.detail}); the copy with a pixel may still be there",
                    entry.message_id,
                ))
                continue
            entry.failures += 1
            entry.next_attempt = now + delay

    async def _pause(self, seconds: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def _seconds_to_next(self, now: float) -> float | None:
        times = [
            e.next_attempt if e.due_at is not None else e.kept_at + self.config.expire_after
            for e in self._entries.values()
        ]
        return max(0.0, min(times) - now) if times else None

    async def _expire(self, now: float) -> None:
        for entry in self.pending():
            if entry.due_at is None and now - entry.kept_at >= self.config.expire_after:
                log.info("sent cleanup: %s never left the outbox; released", entry.message_id)
                await self._release(entry)

    # ------------------------------------------------------------ one session

    async def _session(self, due: list[KeptOriginal]) -> None:
        self._check_plain()
        try:
            password = await asyncio.to_thread(self._password)
        except Exception as exc:  # e.g. a locked keyring; its message says what to do
            raise _CannotLogIn(f"the IMAP password cannot be read: {exc}") from exc
        if not password:
            raise AuthenticationFailed("no IMAP password is set")
        client = await ImapClient.connect(
            self.url.host, self.url.port, self.url.security, self._ssl_context,
            self.config.connect_seconds,
        )
        client.stats = self.stats.imap  # counted as they happen, over all connections
        self.stats.sessions += 1
        try:
            await client.login(self.url.user, password)
            folders = await find_folders(client, self.config.sent_folder)
            if folders.sent is None:
                raise _NoSentFolder
            trash = folders.trash if self._use_trash(client) else None
            mailbox = await client.select(folders.sent.name)
            for entry in due:
                if self._stopping:
                    break
                if entry.email_id not in self._entries:
                    continue
                self._busy = True
                try:
                    await self._entry_pass(client, folders.sent, trash, mailbox, entry)
                finally:
                    self._busy = False
            await client.logout()
        finally:
            await client.close()

    def _use_trash(self, client: ImapClient) -> bool:
        mode = self.config.trash
        return mode == "always" or (mode == "auto" and GMAIL in client.capabilities)

    def _check_plain(self) -> None:
        if self.url.security == "none" and not (self._allow_plain or is_loopback(self.url.host)):
            raise _CannotLogIn(
                f"{self.url.host} would receive your password unencrypted; use "
                "imaps:// or imap+starttls://, or set imap.allow_plain"
            )

    async def _entry_pass(
        self,
        client: ImapClient,
        sent: ListedMailbox,
        trash: ListedMailbox | None,
        mailbox: Mailbox,
        entry: KeptOriginal,
    ) -> None:
        """One email; an IMAP refusal for it postpones it alone."""
        try:
            await self._tidy(client, sent, trash, mailbox, entry)
        except ConnectionClosed:
            raise
        except ImapError as exc:
            log.warning("sent cleanup of %s: %s", entry.message_id, exc)
            entry.failures += 1
            entry.next_attempt = self._clock() + min(
                self.config.backoff_max, self.config.backoff_initial * 2 ** entry.failures
            )
            self._set_status(CleanupStatus(
                CleanupState.ERROR,
                f"the mail server refused a change for {entry.label}: {exc}",
                entry.message_id,
            ))
            await client.select(sent.name)  # back where we were, for the next email

    async def _tidy(
        self,
        client: ImapClient,
        sent: ListedMailbox,
        trash: ListedMailbox | None,
        mailbox: Mailbox,
        entry: KeptOriginal,
    ) -> None:
        if not _SEARCHABLE.match(entry.message_id):
            await self._finish(entry, CleanupStatus(
                CleanupState.NOT_FOUND,
                f"the Message-ID of {entry.label} cannot be searched for; nothing was changed",
                entry.message_id,
            ))
            return
        self.stats.passes += 1
        found = await self._look(client, mailbox, entry)
        appended = False
        removed = 0
        if found.tracked and mailbox.read_only:
            await self._finish(entry, CleanupStatus(
                CleanupState.READ_ONLY,
                f"your Sent folder is read-only, so the copy of {entry.label} with a pixel "
                "stays there (opening it may count as an open); nothing was changed",
                entry.message_id,
            ))
            return
        needs_original = not found.clean and not found.unproven
        if found.tracked and needs_original and trash is None:
            # The original goes in first: a crash never leaves Sent without the email.
            uid = await self._append(client, sent, entry)
            appended = True
            if uid in found.tracked:
                # The server merged the two (one message per Message-ID): deleting the
                # tracked copy would delete the original too. Nothing more can be done.
                await self._finish(entry, CleanupStatus(
                    CleanupState.INCOMPLETE,
                    f"the mail server keeps one message per Message-ID, so the copy of "
                    f"{entry.label} with a pixel could not be replaced; it was left alone",
                    entry.message_id,
                ))
                return
        if found.tracked:
            if needs_original and trash is not None:
                # Gmail keeps one message per Message-ID: the tracked copy must be gone
                # before the original can go in. Owed until appended, across a crash.
                entry.append_owed = True
                await asyncio.to_thread(self._spool.save, entry)
            removed = await self._remove(client, sent, trash, found.tracked, entry)
            self.stats.removed += removed
        if entry.append_owed and not found.clean and not found.unproven:
            await self._append(client, sent, entry)
            appended = True
            entry.append_owed = False
        await self._after_pass(entry, found, removed, appended)

    async def _append(self, client: ImapClient, sent: ListedMailbox, entry: KeptOriginal) -> int:
        """Put the original into Sent, read, dated when it was sent; its new UID (or 0)."""
        original = await asyncio.to_thread(self._spool.read, entry)
        when = datetime.fromtimestamp(entry.kept_at, UTC)
        uid = await client.append(sent.name, original, (SEEN,), when)
        self.stats.appended += 1
        return uid or 0

    async def _look(self, client: ImapClient, mailbox: Mailbox, entry: KeptOriginal) -> _Found:
        """Search by header and say what each message found is (each one read only once)."""
        uids = await client.uid_search(f"HEADER Message-ID {quote(entry.message_id)}")
        uids = uids[-max(1, self.config.max_candidates) :]
        validity = mailbox.uidvalidity
        known = {uid: entry.seen[(validity, uid)] for uid in uids if (validity, uid) in entry.seen}
        fresh = [uid for uid in uids if uid not in known]
        if fresh:
            known.update(await self._classify(client, entry, fresh))
        found = _Found()
        for uid, kind in known.items():
            entry.seen[(validity, uid)] = kind
            if kind is CopyKind.TRACKED:
                found.tracked.append(uid)
            elif kind is CopyKind.CLEAN:
                found.clean.append(uid)
            elif kind is CopyKind.UNPROVEN:
                found.unproven.append(uid)
        return found

    async def _classify(
        self, client: ImapClient, entry: KeptOriginal, uids: list[int]
    ) -> dict[int, CopyKind]:
        """Fetch the Message-ID of ``uids``, then the bodies of those that match."""
        heads = await client.uid_fetch(uids, HEADER_ITEMS)
        kinds: dict[int, CopyKind] = {}
        small: list[int] = []
        for uid in uids:
            items = heads.get(uid)
            if items is None:
                continue
            size = items.get("RFC822.SIZE")
            if not same_message_id(_message_id_of(items), entry.message_id):
                kinds[uid] = CopyKind.OTHER
            elif isinstance(size, int) and size > self.config.max_message_bytes:
                kinds[uid] = CopyKind.UNPROVEN  # too big to look at: never deleted
            else:
                small.append(uid)
        if not small:
            return kinds
        bodies = await client.uid_fetch(small, "(UID BODY.PEEK[])", time_limit=300.0)
        keys = {entry.message_key, *self._keys(entry.message_id)}
        for uid in small:
            raw = bodies.get(uid, {}).get("BODY[]")
            if not isinstance(raw, bytes):
                continue
            kind = await asyncio.to_thread(
                classify_copy, raw, entry.message_id, keys, self._identity
            )
            if kind is CopyKind.CLEAN and _flagged_deleted(heads[uid]):
                continue  # marked deleted, on its way out: not the copy that stays
            kinds[uid] = kind
        return kinds

    def _keys(self, message_id: str) -> set[str]:
        try:
            return set(self._message_keys(message_id))
        except Exception:  # the records store is a help here, not a must
            log.exception("sent cleanup: cannot read the message keys of %s", message_id)
            return set()

    async def _remove(
        self,
        client: ImapClient,
        sent: ListedMailbox,
        trash: ListedMailbox | None,
        uids: list[int],
        entry: KeptOriginal,
    ) -> int:
        """Delete the tracked copies; how many are gone from Sent."""
        if trash is not None:
            return await self._to_trash(client, sent, trash, uids, entry)
        await client.uid_store(uids, "+FLAGS.SILENT", DELETED)
        if await _expunge(client, uids):
            return len(uids)
        entry.note = (
            "its copies with a pixel are marked deleted but still in Sent, because other "
            "messages there are marked deleted too and this server cannot remove one alone"
        )
        return 0

    async def _to_trash(
        self,
        client: ImapClient,
        sent: ListedMailbox,
        trash: ListedMailbox,
        uids: list[int],
        entry: KeptOriginal,
    ) -> int:
        """Gmail: deleting from Sent only takes a label away; moved to Trash the message
        leaves All Mail, and purged from Trash (only what was just moved) it is gone."""
        if "MOVE" in client.capabilities:
            moved = await client.uid_move(uids, trash.name)
        else:
            moved = await client.uid_copy(uids, trash.name)
            await client.uid_store(uids, "+FLAGS.SILENT", DELETED)
            if not await _expunge(client, uids):
                entry.note = "its copies with a pixel were copied to Trash but are still in Sent"
                return 0
        if moved:
            await client.select(trash.name)
            await client.uid_store(list(moved.values()), "+FLAGS.SILENT", DELETED)
            await _expunge(client, list(moved.values()))
            await client.select(sent.name)
        return len(uids)

    async def _after_pass(
        self, entry: KeptOriginal, found: _Found, removed: int, appended: bool
    ) -> None:
        now = self._clock()
        entry.searches += 1
        entry.failures = 0
        if entry.first_search_at is None:
            entry.first_search_at = now
        entry.removed += removed
        entry.clean_seen = entry.clean_seen or bool(found.clean) or appended
        entry.unproven = max(entry.unproven, len(found.unproven))
        complete = entry.removed >= max(1, entry.delivered) and entry.clean_seen
        if complete or now - entry.first_search_at >= self.config.search_window:
            await self._finish(entry, self._outcome(entry, complete))
            return
        delays = self.config.retry_delays or (self.config.search_window,)
        entry.next_attempt = now + delays[min(entry.searches, len(delays)) - 1]
        await asyncio.to_thread(self._spool.save, entry)
        self._set_status(CleanupStatus(
            CleanupState.WAITING,
            f"{entry.removed} of {entry.delivered} copies of {entry.label} put right so far; "
            "looking again for the provider's copy",
            entry.message_id,
        ))

    def _outcome(self, entry: KeptOriginal, complete: bool) -> CleanupStatus:
        mid = entry.message_id
        if entry.note:
            return CleanupStatus(CleanupState.INCOMPLETE, f"{entry.label}: {entry.note}", mid)
        if complete or (entry.clean_seen and not entry.unproven):
            what = (
                f"removed {entry.removed} cop{'y' if entry.removed == 1 else 'ies'} "
                "with a pixel; the untracked email is in Sent"
                if entry.removed else "nothing with a pixel was in Sent"
            )
            return CleanupStatus(CleanupState.DONE, f"{entry.label}: {what}", mid)
        if entry.unproven:
            return CleanupStatus(
                CleanupState.NOT_FOUND,
                f"copies of {entry.label} in Sent carry tracking that MailBeacon cannot prove "
                "is yours; they were left alone",
                mid,
            )
        return CleanupStatus(
            CleanupState.NOT_FOUND,
            f"no copy of {entry.label} with your pixel was found in Sent (the provider may "
            "have changed its Message-ID); nothing was changed",
            mid,
        )

    # ------------------------------------------------------------ endings

    async def _finish(self, entry: KeptOriginal, status: CleanupStatus) -> None:
        if status.state is CleanupState.DONE:
            log.info("sent cleanup: %s", status.detail)
        await self._release(entry, status)

    async def _release(self, entry: KeptOriginal, status: CleanupStatus | None = None) -> None:
        """Delete the kept original; then (at once, so watchers see both) forget it and
        say how it ended."""
        await asyncio.to_thread(self._spool.remove, entry)
        if self._entries.get(entry.email_id) is entry:
            del self._entries[entry.email_id]
        if status is not None:
            self._set_status(status)
        else:
            self._changed()

    def _set_status(self, status: CleanupStatus) -> None:
        self.status = status
        if status.problem is not None:
            log.warning("%s", status.problem)
        try:
            self._on_status(status)
        except Exception:  # a listener's bug must not stop the cleanup
            log.exception("the sent cleanup status listener failed")
        self._changed()


def _message_id_of(items: dict[str, Value]) -> str | None:
    for key, value in items.items():
        if key.startswith("BODY[HEADER.FIELDS") and isinstance(value, bytes):
            return header_value(value, "Message-ID")
    return None


def _flagged_deleted(items: dict[str, Value]) -> bool:
    flags = items.get("FLAGS")
    return isinstance(flags, list) and any(
        isinstance(f, bytes) and f.upper() == b"\\DELETED" for f in flags
    )


async def _expunge(client: ImapClient, uids: list[int]) -> bool:
    """Remove exactly ``uids`` (marked \\Deleted); False when that cannot be done alone."""
    if "UIDPLUS" in client.capabilities:
        await client.uid_expunge(uids)
        return True
    # A plain EXPUNGE removes everything marked deleted: only if that is ours alone.
    others = set(await client.uid_search("DELETED")) - set(uids)
    if others:
        return False
    await client.expunge()
    return True


def _unreachable(url: MailServerUrl, exc: BaseException) -> str:
    return f"{unreachable_message(url, exc)}; will try again"


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


# ---------------------------------------------------------------- wiring


def build_sent_cleanup(
    settings: Callable[[], Settings],
    secrets: SecretStore,
    data_dir: Path,
    records: RecordsStore,
    enrollment: Enrollment,
    on_status: Callable[[CleanupStatus], None] = lambda _status: None,
    clock: Callable[[], float] = time.time,
    config: CleanupConfig | None = None,
) -> SentCleanup | None:
    """The cleanup the settings ask for; None when ``imap.url`` is empty or
    ``sent_cleanup.enabled`` is off (then kept originals are discarded).
    Raises SettingError for an unusable IMAP URL."""
    current = settings()
    if not current.imap.url.strip() or not current.sent_cleanup.enabled:
        discard_originals(data_dir)
        return None
    url = parse_mail_url(current.imap.url, "imap")
    if not url.user:
        raise SettingError(f"put the IMAP user name in the URL, like imaps://you@{url.host}")

    def enabled() -> bool:
        now = settings()
        return bool(now.sent_cleanup.enabled and now.imap.url.strip())

    def message_keys(message_id: str) -> list[str]:
        return [email.message_key for email in records.emails_for_message_id(message_id)]

    return SentCleanup(
        data_dir / ORIGINALS_DIR,
        url,
        lambda: secrets.get(Secret.IMAP_PASSWORD),
        Identity(enrollment.user_id, enrollment.signing_key),
        message_keys,
        enabled,
        on_status,
        allow_plain=current.imap.allow_plain,
        config=config,
        clock=clock,
    )
