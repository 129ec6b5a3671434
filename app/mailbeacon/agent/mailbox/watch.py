"""Watch the rep's inbox over IMAP and hand each newly arrived message to a handler.

The watcher remembers the mailbox's UIDVALIDITY and the next UID it has not
seen in a small JSON file (written atomically), so a restart resumes exactly
where it stopped. On the very first start it records the mailbox's UIDNEXT and
looks only at mail arriving from then on: a mailbox of 50,000 messages costs
one EXAMINE, never a scan. New messages are fetched header-only
(``BODY.PEEK[HEADER]``, nothing is marked read) in bounded batches; a handler
that needs the whole message (to log a reply, to read a bounce) asks for it.

Waiting: IDLE where the server offers it (re-issued every 25 minutes, inside
the 29 the RFC allows), else a polite poll (60 s). Connection problems back off
(1 s doubling to 5 min); a refused password waits 15 minutes or until
``retry_now()`` (the rep changed it) so a wrong password never hammers the
server into locking the account. Every state change goes to ``on_status``.

A UIDVALIDITY change (the mailbox was recreated or renumbered) restarts at the
new UIDNEXT; mail that arrived in the new mailbox since the last check (by its
INTERNALDATE, with a margin for clock skew) is looked at once, so nothing new is
missed, and the handler's own keys (``reply:<Message-ID>``) keep anything it
already recorded from being recorded twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from mailbeacon.agent.account.bearer import BearerSource
from mailbeacon.agent.mailbox.background import stop_gracefully, wait_or_timeout
from mailbeacon.agent.mailbox.imap_client import ConnectionClosed, ImapClient, ImapError, Mailbox
from mailbeacon.agent.mailbox.imap_parse import Value
from mailbeacon.agent.mailbox.session import (
    ImapAccount,
    SessionFailure,
    Trouble,
    account_url,
    describe_failure,
    imap_session,
)
from mailbeacon.agent.settings.mail_urls import MailServerUrl
from mailbeacon.core.backoff import Backoff, Retry
from mailbeacon.core.durable import atomic_write
from mailbeacon.core.language import Phrase, mark

log = logging.getLogger(__name__)

STATE_FILE = "imap_state.json"
HEADER_ITEMS = "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER])"
MAX_ATTEMPTS = 3  # a message whose handling broke the connection this often is skipped


class ImapState(StrEnum):
    """Where the watcher stands."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 - a state name
    UNREACHABLE = "unreachable"
    ERROR = "error"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class ImapStatus:
    """A state and, when something is wrong, what to do about it (for the rep)."""

    state: ImapState
    detail: str = ""
    push: bool = False  # new mail is pushed (IDLE) rather than polled

    @property
    def problem(self) -> str | None:
        """A sentence for the rep's status list, or None when all is well."""
        if self.state in (ImapState.CONNECTED, ImapState.CONNECTING, ImapState.STOPPED):
            return None
        return Phrase(mark("Replies are not being watched: {detail}"), detail=self.detail)


@dataclass(frozen=True, slots=True)
class WatcherConfig:
    """The watcher's knobs; the defaults are for real servers, tests shorten them."""

    mailbox: str = "INBOX"
    batch_size: int = 50
    idle_seconds: float = 25 * 60
    poll_seconds: float = 60.0
    use_idle: bool = True
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    auth_retry_seconds: float = 15 * 60
    connect_seconds: float = 30.0
    recovery_limit: int = 500
    recovery_margin_seconds: float = 15 * 60

    @property
    def backoff(self) -> Backoff:
        """Waits between failed connections: doubling, spread ±20% (rule in core.backoff)."""
        return Backoff(first=self.backoff_initial, cap=self.backoff_max, jitter=0.2)


@dataclass(slots=True)
class WatcherStats:
    """What the watcher did (for the operator's log and for tests)."""

    sessions: int = 0
    checks: int = 0
    header_fetches: int = 0  # FETCH commands for headers
    headers_fetched: int = 0  # messages whose headers were fetched
    bodies_fetched: int = 0
    handled: int = 0
    failed: int = 0
    resets: int = 0


@dataclass(frozen=True, slots=True)
class WatchState:
    """What the watcher remembers between runs."""

    account: str
    uidvalidity: int
    next_uid: int
    checked_at: float | None = None  # local time of the last complete check


class StateFile:
    """The watcher's memory: one small JSON file, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> WatchState | None:
        """The saved state, or None (never saved, or unreadable: then start afresh)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return WatchState(
                account=str(data["account"]),
                uidvalidity=int(data["uidvalidity"]),
                next_uid=int(data["next_uid"]),
                checked_at=None if data.get("checked_at") is None else float(data["checked_at"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the damaged IMAP state file %s: %s", self.path, exc)
            return None

    def save(self, state: WatchState) -> None:
        """Write the state durably."""
        data = dict(asdict(state), version=1)
        atomic_write(self.path, json.dumps(data, sort_keys=True).encode())


@dataclass(slots=True)
class IncomingMessage:
    """A newly arrived message: its header block, and the rest on request."""

    uid: int
    header: bytes
    size: int
    arrived_at: datetime | None
    _fetch: Callable[[int, int | None], Awaitable[bytes]] = field(repr=False)

    async def body(self, limit: int | None = None) -> bytes:
        """The whole message (or its first ``limit`` bytes), fetched without marking it read."""
        return await self._fetch(self.uid, limit)


Handler = Callable[[IncomingMessage], Awaitable[None]]


class _Stopping(Exception):
    """stop() was called while a message was being handled; it is done now."""


class ImapWatcher:
    """Watches one mailbox; ``start()``/``stop()``, or ``await run()`` in a task of your own."""

    def __init__(
        self,
        url: MailServerUrl,
        password: Callable[[], str | None],
        state_path: Path,
        handler: Handler,
        on_status: Callable[[ImapStatus], None] = lambda _status: None,
        *,
        allow_plain: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        config: WatcherConfig | None = None,
        clock: Callable[[], float] = time.time,
        bearer: BearerSource | None = None,
    ) -> None:
        """``password`` is called (in a worker thread) on each login: a keyring read.

        With ``bearer`` the login is by OAuth access token instead."""
        self.url = url
        self.config = config or WatcherConfig()
        self._account = ImapAccount(
            url, password, allow_plain, ssl_context, self.config.connect_seconds, bearer=bearer
        )
        self._state_file = StateFile(state_path)
        self._handler = handler
        self._on_status = on_status
        self._clock = clock
        self.status = ImapStatus(ImapState.STOPPED)
        self.stats = WatcherStats()
        # Set while waiting for news: the server has accepted IDLE, or between polls.
        self.waiting = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: ImapClient | None = None
        self._attempts: dict[int, int] = {}
        self._state: WatchState | None = None
        self._busy = False
        self._stopping = False
        self._reached_at: float | None = None  # when the current session opened the mailbox

    @property
    def account(self) -> str:
        """Which mailbox this is, as the state file names it."""
        u = self.url
        return f"{u.scheme}://{u.user}@{u.host}:{u.port}/{self.config.mailbox}"

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Run in the background until ``stop()``."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="imap-watch")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop watching and close the connection.

        A message being handled is finished and remembered first (up to
        ``grace_seconds``), so a restart does not fetch it again.
        """
        task, self._task = self._task, None
        try:
            if task is not None:
                self._stopping = True
                await stop_gracefully(task, lambda: self._busy, grace_seconds)
        finally:
            self._stopping = False
            self._set_status(ImapStatus(ImapState.STOPPED))

    def retry_now(self) -> None:
        """Cut a wait short (the rep changed the password, or the network came back)."""
        self._wake.set()

    async def run(self) -> None:
        """Connect, catch up, wait for news; reconnect with backoff. Runs until cancelled."""
        loop = asyncio.get_running_loop()
        retry = Retry(self.config.backoff, random.random)
        while True:
            self._wake.clear()
            self._reached_at = None
            try:
                await self._session()
            except _Stopping:
                return
            except Exception as exc:  # a bug too must not end reply watching for good
                failure = describe_failure(exc, self.url)
                if failure.trouble is Trouble.BUG:
                    log.exception("the IMAP watcher failed")
                if self._report(failure, exc):
                    await self._pause(self.config.auth_retry_seconds)
                    continue
            # A session that worked for a while starts the backoff afresh; one that
            # fails right after logging in keeps backing off.
            opened = self._opened()
            if opened is not None and loop.time() - opened > 60:
                retry.reset()
            await self._pause(retry.next_delay())

    def _report(self, failure: SessionFailure, exc: Exception) -> bool:
        """Say what ended the session; True when only the rep can put it right."""
        if failure.trouble is Trouble.UNREACHABLE and self._opened() is not None:
            # A dropped connection is a problem only if connecting again fails.
            log.info("IMAP connection lost (%s); reconnecting", exc)
            self._set_status(ImapStatus(ImapState.CONNECTING, "reconnecting"))
            return False
        state = {
            Trouble.WRONG_PASSWORD: ImapState.WRONG_PASSWORD,
            Trouble.UNREACHABLE: ImapState.UNREACHABLE,
        }.get(failure.trouble, ImapState.ERROR)
        self._set_status(ImapStatus(state, failure.detail))
        return failure.trouble.needs_the_rep

    def _opened(self) -> float | None:
        """When the current session opened the mailbox (None: it did not get so far)."""
        return self._reached_at

    async def _pause(self, seconds: float) -> None:
        await wait_or_timeout(self._wake, seconds)

    # ------------------------------------------------------------ one session

    async def _session(self) -> None:
        """One connection, until it fails (it always ends by raising)."""
        self._set_status(ImapStatus(ImapState.CONNECTING))
        async with imap_session(self._account) as client:
            self._client = client
            try:
                await self._watch_session(client)
            finally:
                self._client = None
                self.waiting.clear()

    async def _watch_session(self, client: ImapClient) -> None:
        mailbox = await client.examine(self.config.mailbox)
        self._reached_at = asyncio.get_running_loop().time()
        self.stats.sessions += 1
        push = self.config.use_idle and "IDLE" in client.capabilities
        self._set_status(ImapStatus(ImapState.CONNECTED, push=push))
        log.info("watching %s for replies (%s)", self.account, "IDLE" if push else "polling")
        await self._begin(client, mailbox)
        await self._watch(client, push)

    async def _begin(self, client: ImapClient, mailbox: Mailbox) -> None:
        """Where to start: the saved point, or (first start, new mailbox) UIDNEXT."""
        saved = await asyncio.to_thread(self._state_file.load)
        if saved is not None and saved.account == self.account:
            if saved.uidvalidity == mailbox.uidvalidity:
                self._state = saved
                return
            log.warning(
                "UIDVALIDITY of %s changed (%s -> %s): starting at the new end",
                self.account, saved.uidvalidity, mailbox.uidvalidity,
            )
            self.stats.resets += 1
            start = await self._uidnext(client, mailbox)
            await self._recover(client, saved.checked_at, start)
        else:
            start = await self._uidnext(client, mailbox)
            log.info("first look at %s: new mail from UID %s on", self.account, start)
        await self._save(WatchState(self.account, mailbox.uidvalidity, start, self._clock()))

    async def _uidnext(self, client: ImapClient, mailbox: Mailbox) -> int:
        if mailbox.uidnext is not None:
            return mailbox.uidnext
        if mailbox.exists == 0:
            return 1
        found = await client.uid_fetch_last()
        return found + 1

    async def _recover(self, client: ImapClient, checked_at: float | None, end: int) -> None:
        """After a UIDVALIDITY change: look once at what arrived since the last check."""
        if checked_at is None:
            return
        since = checked_at - self.config.recovery_margin_seconds
        day = datetime.fromtimestamp(since, UTC).strftime("%d-%b-%Y")
        uids = [u for u in await client.uid_search(f"SINCE {day}") if u < end]
        uids = uids[-self.config.recovery_limit :]
        dates = await client.uid_fetch(uids, "(UID INTERNALDATE)") if uids else {}
        recent = [
            uid for uid in uids
            if (when := _internaldate(dates.get(uid, {}).get("INTERNALDATE"))) is None
            or when.timestamp() >= since
        ]
        log.info("looking again at %d messages that arrived around the change", len(recent))
        await self._process(client, recent)

    async def _watch(self, client: ImapClient, push: bool) -> None:
        loop = asyncio.get_running_loop()
        verified = loop.time()
        while True:
            client.new_mail = False
            await self._catch_up(client)
            if client.new_mail:
                continue  # mail arrived while we were fetching: look again first
            try:
                if push:
                    await client.idle(self.config.idle_seconds, self.waiting.set)
                else:
                    self.waiting.set()
                    await self._poll_wait()
                    await client.noop()
            finally:
                self.waiting.clear()
            if client.alert or loop.time() - verified >= self.config.idle_seconds:
                # A server that keeps a deleted mailbox open only warns ("* NO") or
                # says nothing at all: opening it afresh shows a new UIDVALIDITY.
                client.alert = False
                verified = loop.time()
                await self._reopen(client)

    async def _reopen(self, client: ImapClient) -> None:
        mailbox = await client.examine(self.config.mailbox)
        if self._state is None or mailbox.uidvalidity != self._state.uidvalidity:
            await self._begin(client, mailbox)

    async def _poll_wait(self) -> None:
        await wait_or_timeout(self._wake, self.config.poll_seconds)
        self._wake.clear()

    async def _catch_up(self, client: ImapClient) -> None:
        """Handle every message at or after the saved next UID, in bounded batches."""
        state = self._state
        if state is None:  # pragma: no cover - _begin set it
            raise ImapError("the watcher has no starting point")
        checked_at = self._clock()
        self.stats.checks += 1
        # A range beyond the last UID still returns the last message: filter it out.
        uids = [u for u in await client.uid_search(f"UID {state.next_uid}:*")
                if u >= state.next_uid]
        await self._process(client, uids, advance=True)
        if self._state is not None:
            await self._save(replace(self._state, checked_at=checked_at))

    async def _process(self, client: ImapClient, uids: list[int], advance: bool = False) -> None:
        size = max(1, self.config.batch_size)
        for start in range(0, len(uids), size):
            batch = uids[start : start + size]
            self.stats.header_fetches += 1
            fetched = await client.uid_fetch(batch, HEADER_ITEMS)
            self.stats.headers_fetched += len(fetched)
            for uid in batch:
                # Busy from handling a message until the state says so: stop() waits.
                self._busy = True
                try:
                    items = fetched.get(uid)
                    if items is not None:
                        await self._handle(uid, items)
                    if advance and self._state is not None and (
                        self._stopping or uid == batch[-1]
                    ):
                        next_uid = max(self._state.next_uid, uid + 1)
                        await self._save(replace(self._state, next_uid=next_uid))
                finally:
                    self._busy = False
                if self._stopping:
                    raise _Stopping

    async def _handle(self, uid: int, items: dict[str, Value]) -> None:
        header = items.get("BODY[HEADER]")
        size = items.get("RFC822.SIZE")
        message = IncomingMessage(
            uid=uid,
            header=header if isinstance(header, bytes) else b"",
            size=size if isinstance(size, int) else 0,
            arrived_at=_internaldate(items.get("INTERNALDATE")),
            _fetch=self._fetch_body,
        )
        attempts = self._attempts.get(uid, 0) + 1
        if attempts > MAX_ATTEMPTS:
            log.error("skipping message UID %s: handling it failed %d times", uid, MAX_ATTEMPTS)
            self._attempts.pop(uid, None)
            return
        self._attempts[uid] = attempts
        try:
            await self._handler(message)
        except (ImapError, OSError, TimeoutError):
            raise  # the connection broke: reconnect and handle this message again
        except Exception:
            self.stats.failed += 1
            log.exception("handling incoming message UID %s failed; skipping it", uid)
        else:
            self.stats.handled += 1
        self._attempts.pop(uid, None)

    async def _fetch_body(self, uid: int, limit: int | None) -> bytes:
        client = self._client
        if client is None:
            raise ConnectionClosed("the IMAP connection is closed")
        item = "BODY.PEEK[]" if limit is None else f"BODY.PEEK[]<0.{int(limit)}>"
        self.stats.bodies_fetched += 1
        fetched = await client.uid_fetch([uid], f"(UID {item})", time_limit=300.0)
        items = fetched.get(uid, {})
        for key, value in items.items():
            if key.startswith("BODY[]") and isinstance(value, bytes):
                return value
        return b""

    async def _save(self, state: WatchState) -> None:
        await asyncio.to_thread(self._state_file.save, state)
        self._state = state

    def _set_status(self, status: ImapStatus) -> None:
        if status == self.status:
            return
        self.status = status
        if status.state in (ImapState.WRONG_PASSWORD, ImapState.UNREACHABLE, ImapState.ERROR):
            log.warning("IMAP %s: %s", status.state, status.detail)
        try:
            self._on_status(status)
        except Exception:  # a listener's bug must not stop the watcher
            log.exception("the IMAP status listener failed")


def _internaldate(value: Value) -> datetime | None:
    """An IMAP INTERNALDATE (``17-Jul-1996 02:44:25 -0700``) as an aware datetime."""
    if not isinstance(value, bytes):
        return None
    try:
        return datetime.strptime(value.decode("ascii").strip(), "%d-%b-%Y %H:%M:%S %z")
    except (UnicodeDecodeError, ValueError):
        return None


def build_watcher(
    imap_url: str,
    allow_plain: bool,
    password: Callable[[], str | None],
    data_dir: Path,
    handler: Handler,
    on_status: Callable[[ImapStatus], None] = lambda _status: None,
    config: WatcherConfig | None = None,
    bearer: BearerSource | None = None,
) -> ImapWatcher | None:
    """The watcher for settings ``imap.url``/``imap.allow_plain``; None when no URL is set.

    Raises SettingError for a URL that cannot be used (the message says why).
    """
    if not imap_url.strip():
        return None
    return ImapWatcher(
        account_url(imap_url),
        password,
        data_dir / STATE_FILE,
        handler,
        on_status,
        allow_plain=allow_plain,
        config=config,
        bearer=bearer,
    )
