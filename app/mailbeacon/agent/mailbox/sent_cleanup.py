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

The parts: what a copy in Sent is (:mod:`sent_copies`), looking and changing in
Sent on one connection (:mod:`sent_folder`), the kept originals on disk
(:mod:`sent_spool`), states, knobs and the rep's wording (:mod:`sent_status`);
this module is the worker that puts them together, and its wiring.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from mailbeacon.agent.account.bearer import BearerSource
from mailbeacon.agent.mailbox.background import stop_gracefully, wait_or_timeout
from mailbeacon.agent.mailbox.folders import find_folders
from mailbeacon.agent.mailbox.imap_client import ConnectionClosed, ImapClient, ImapError
from mailbeacon.agent.mailbox.sent_copies import Identity
from mailbeacon.agent.mailbox.sent_folder import Found, SentFolder
from mailbeacon.agent.mailbox.sent_spool import (
    MAX_HEADER_LINE,
    ORIGINALS_DIR,
    KeptOriginal,
    OriginalsSpool,
    discard_originals,
)
from mailbeacon.agent.mailbox.sent_status import (
    CleanupConfig,
    CleanupState,
    CleanupStats,
    CleanupStatus,
    account_trouble,
    change_refused,
    gave_up,
    merged,
    no_sent_folder,
    outcome,
    read_only,
    unsearchable,
    waiting,
)
from mailbeacon.agent.mailbox.session import (
    ImapAccount,
    SessionFailure,
    Trouble,
    account_url,
    describe_failure,
    imap_session,
)
from mailbeacon.agent.records.store import RecordsStore
from mailbeacon.agent.sending.outbox_items import DeliveryFailure, QueuedItem
from mailbeacon.agent.settings.mail_urls import MailServerUrl
from mailbeacon.agent.settings.secrets import Secret, SecretStore
from mailbeacon.agent.settings.store import Settings
from mailbeacon.core.backoff import Retry
from mailbeacon.core.enrollment import Enrollment
from mailbeacon.core.extract import header_value

__all__ = ["SentCleanup", "build_sent_cleanup"]

log = logging.getLogger(__name__)

GMAIL = "X-GM-EXT-1"
_SEARCHABLE = re.compile(r"^<?[\x21-\x7e]{1,990}>?$")


class _NoSentFolder(Exception):
    """The account has no folder that looks like Sent."""


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
        bearer: BearerSource | None = None,
    ) -> None:
        """``password`` is called in a worker thread on each login (a keyring read);
        ``message_keys`` gives the message keys recorded for a Message-ID (every
        send of it, duplicates included)."""
        self.url = url
        self.config = config or CleanupConfig()
        self._account = ImapAccount(
            url, password, allow_plain, ssl_context, self.config.connect_seconds, bearer=bearer
        )
        self._spool = OriginalsSpool(folder)
        self._identity = identity
        self._message_keys = message_keys
        self._enabled = enabled
        self._on_status = on_status
        self._clock = clock
        self.status = CleanupStatus(CleanupState.IDLE)
        self.stats = CleanupStats()
        self._entries: dict[int, KeptOriginal] = {}
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retry = Retry(self.config.backoff)  # the account's failures in a row
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
        await stop_gracefully(task, lambda: self._busy, grace_seconds)
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
            await wait_or_timeout(self._progress, remaining)
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
        except _NoSentFolder:
            for entry in due:
                await self._finish(entry, no_sent_folder(entry, self.url.host))
            return
        except Exception as exc:  # a bug too must not end the cleanup for good
            failure = describe_failure(exc, self.url)
            if failure.trouble is Trouble.BUG:
                log.exception("sent cleanup failed")
            await self._postpone(due, self._wait_after(failure), account_trouble(failure))
        else:
            self._retry.reset()

    def _wait_after(self, failure: SessionFailure) -> float:
        if failure.trouble.needs_the_rep:
            return self.config.auth_retry_seconds  # a wrong password must not lock the account
        return self._retry.next_delay()

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
                await self._finish(entry, gave_up(entry, days, status.detail))
                continue
            entry.failures += 1
            entry.next_attempt = now + delay

    async def _pause(self, seconds: float | None) -> None:
        await wait_or_timeout(self._wake, seconds)

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
        # stats.imap counts every connection's commands as they happen.
        async with imap_session(self._account, self.stats.imap) as client:
            self.stats.sessions += 1
            folders = await find_folders(client, self.config.sent_folder)
            if folders.sent is None:
                raise _NoSentFolder
            trash = folders.trash if self._use_trash(client) else None
            mailbox = await client.select(folders.sent.name)
            sent = SentFolder(
                client, folders.sent, trash, mailbox, self.config, self._identity, self._keys
            )
            for entry in due:
                if self._stopping:
                    break
                if entry.email_id not in self._entries:
                    continue
                self._busy = True
                try:
                    await self._entry_pass(sent, entry)
                finally:
                    self._busy = False

    def _use_trash(self, client: ImapClient) -> bool:
        mode = self.config.trash
        return mode == "always" or (mode == "auto" and GMAIL in client.capabilities)

    async def _entry_pass(self, sent: SentFolder, entry: KeptOriginal) -> None:
        """One email; an IMAP refusal for it postpones it alone."""
        try:
            await self._tidy(sent, entry)
        except ConnectionClosed:
            raise
        except ImapError as exc:
            log.warning("sent cleanup of %s: %s", entry.message_id, exc)
            entry.failures += 1
            entry.next_attempt = self._clock() + self.config.backoff.delay(entry.failures)
            self._set_status(change_refused(entry, exc))
            await sent.reselect()  # back where we were, for the next email

    async def _tidy(self, sent: SentFolder, entry: KeptOriginal) -> None:
        if not _SEARCHABLE.match(entry.message_id):
            await self._finish(entry, unsearchable(entry))
            return
        self.stats.passes += 1
        found = await sent.look(entry)
        appended = False
        removed = 0
        if found.tracked and sent.mailbox.read_only:
            await self._finish(entry, read_only(entry))
            return
        needs_original = not found.clean and not found.unproven
        if found.tracked and needs_original and sent.trash is None:
            # The original goes in first: a crash never leaves Sent without the email.
            uid = await self._append(sent, entry)
            appended = True
            if uid in found.tracked:
                # The server merged the two (one message per Message-ID): deleting the
                # tracked copy would delete the original too. Nothing more can be done.
                await self._finish(entry, merged(entry))
                return
        if found.tracked:
            if needs_original and sent.trash is not None:
                # Gmail keeps one message per Message-ID: the tracked copy must be gone
                # before the original can go in. Owed until appended, across a crash.
                entry.append_owed = True
                await asyncio.to_thread(self._spool.save, entry)
            removed = await sent.remove(found.tracked, entry)
            self.stats.removed += removed
        if entry.append_owed and not found.clean and not found.unproven:
            await self._append(sent, entry)
            appended = True
            entry.append_owed = False
        await self._after_pass(entry, found, removed, appended)

    async def _append(self, sent: SentFolder, entry: KeptOriginal) -> int:
        """Put the original into Sent, dated when it was sent; its new UID (or 0)."""
        original = await asyncio.to_thread(self._spool.read, entry)
        uid = await sent.append(original, datetime.fromtimestamp(entry.kept_at, UTC))
        self.stats.appended += 1
        return uid

    def _keys(self, message_id: str) -> set[str]:
        try:
            return set(self._message_keys(message_id))
        except Exception:  # the records store is a help here, not a must
            log.exception("sent cleanup: cannot read the message keys of %s", message_id)
            return set()

    async def _after_pass(
        self, entry: KeptOriginal, found: Found, removed: int, appended: bool
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
            await self._finish(entry, outcome(entry, complete))
            return
        delays = self.config.retry_delays or (self.config.search_window,)
        entry.next_attempt = now + delays[min(entry.searches, len(delays)) - 1]
        await asyncio.to_thread(self._spool.save, entry)
        self._set_status(waiting(entry))

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
    bearer: BearerSource | None = None,
) -> SentCleanup | None:
    """The cleanup the settings ask for; None when ``imap.url`` is empty or
    ``sent_cleanup.enabled`` is off (then kept originals are discarded).
    Raises SettingError for an unusable IMAP URL."""
    current = settings()
    if not current.imap.url.strip() or not current.sent_cleanup.enabled:
        discard_originals(data_dir)
        return None
    url = account_url(current.imap.url)

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
        bearer=bearer,
    )
